"""The model catalogue: which fal endpoints genqueue serves, their input schemas, prices, run
times and output kinds, as data (``builtin/*.yaml`` and ``GENQUEUE_MODELS_FILE``)."""

from models.catalogue.catalogue import (
    Catalogue,
    builtin_catalogue,
    expected_run_seconds,
    load_catalogue,
)
from models.catalogue.entry import ModelEntry, OutputKind
from models.catalogue.loader import CatalogueError
from models.catalogue.validation import InputInvalid

__all__ = [
    "Catalogue",
    "CatalogueError",
    "InputInvalid",
    "ModelEntry",
    "OutputKind",
    "builtin_catalogue",
    "expected_run_seconds",
    "load_catalogue",
]
