"""The models genqueue serves: the built-in entries, then the operator's file over them.

The API and the worker each build one :class:`Catalogue` at their edge (``load_catalogue(
settings.models_file)``) and pass it on; :func:`expected_run_seconds` and friends answer from
the built-ins when given no catalogue.
"""

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from models.catalogue.entry import ModelEntry
from models.catalogue.loader import builtin_entries, read_catalogue_file
from models.catalogue.validation import InputValidator

RUNS_BEFORE_DEADLINE = 4
"""A model's deadline is at least this many expected runs after the job is created."""


class Catalogue(Mapping[str, ModelEntry]):
    """Endpoint id → entry, in listing order (built-ins first, the operator's new ones after)."""

    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries = {entry.endpoint_id: entry for entry in entries}
        self._validators: dict[str, InputValidator] = {}
        self._schema_names = _schema_names(self._entries.values())

    def __getitem__(self, endpoint_id: str) -> ModelEntry:
        return self._entries[endpoint_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def validator(self, endpoint_id: str) -> InputValidator:
        """The compiled validator of a listed model's input schema."""
        found = self._validators.get(endpoint_id)
        if found is None:
            found = self._validators[endpoint_id] = InputValidator(
                self._entries[endpoint_id].input_schema
            )
        return found

    def check_input(
        self, endpoint_id: str, payload: Any, *, loc: tuple[str | int, ...] = ()
    ) -> dict[str, Any]:
        """The input as stored and sent (defaults applied); raises ``InputInvalid``."""
        return self.validator(endpoint_id).validate(payload, loc=loc)

    def schema_name(self, endpoint_id: str) -> str:
        """The model's input schema's name among the OpenAPI document's components: models
        that share one schema share its name; another schema with a taken name gets the
        endpoint id's."""
        return self._schema_names[endpoint_id]

    def expected_run_seconds(self, endpoint_id: str) -> float | None:
        entry = self._entries.get(endpoint_id)
        return None if entry is None else entry.expected_run_seconds

    def deadline_seconds(self, endpoint_id: str, default: float) -> float:
        """Seconds from a job's creation to its forced end: ``default``
        (``GENQUEUE_JOB_DEADLINE``), stretched for a model whose runs are long, so a job is
        not failed while it runs as it should (a 300 s video under a 240 s deadline would
        be), with room for the queue before it: :data:`RUNS_BEFORE_DEADLINE` runs."""
        expected = self.expected_run_seconds(endpoint_id)
        if expected is None:
            return default
        return max(default, RUNS_BEFORE_DEADLINE * expected)


def _schema_names(entries: Iterable[ModelEntry]) -> dict[str, str]:
    names: dict[str, str] = {}
    taken: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        name = entry.schema_name
        if name in taken and taken[name] != entry.input_schema:
            name = entry.fallback_schema_name
        taken.setdefault(name, entry.input_schema)
        names[entry.endpoint_id] = name
    return names


@cache
def builtin_catalogue() -> Catalogue:
    """The entries shipped with genqueue (read once a process)."""
    return Catalogue(builtin_entries())


def load_catalogue(models_file: Path | None = None) -> Catalogue:
    """The built-ins, with the operator's file (``GENQUEUE_MODELS_FILE``) over them: an entry
    with a built-in's endpoint id replaces it, a new one is added. Raises ``CatalogueError``."""
    if models_file is None:
        return builtin_catalogue()
    return Catalogue([*builtin_entries(), *read_catalogue_file(models_file)])


def expected_run_seconds(endpoint_id: str, catalogue: Catalogue | None = None) -> float | None:
    """How long a job of this model usually runs, in seconds (the entry's estimate: a prior
    for polling before the model's own recent run times are known); None for a model not in
    the catalogue (the built-ins when none is given)."""
    return (builtin_catalogue() if catalogue is None else catalogue).expected_run_seconds(
        endpoint_id
    )
