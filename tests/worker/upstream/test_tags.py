"""``X-Fal-Tags``: only the tags fal keeps are sent (UPSTREAM.md, request tags)."""

import pytest

from worker.upstream.protocol import tags_header


@pytest.mark.parametrize(
    ("tags", "header"),
    [
        ({"tenant": "acme"}, "tenant=acme"),
        ({"tenant": "acme", "team": "ml-ops.eu"}, "tenant=acme,team=ml-ops.eu"),
        ({"tenant": "a b"}, ""),  # a space
        ({"tenant": "a,b"}, ""),
        ({"tenant": "a=b"}, ""),
        ({"tenant": "café"}, ""),  # beyond ASCII
        ({"tenant": ""}, ""),
        ({"tenant": "x" * 257}, ""),
        ({"Tenant": "acme"}, ""),  # keys are lower case
        ({"fal.tenant": "acme"}, ""),  # reserved
        ({f"k{i}": "v" for i in range(12)}, ",".join(f"k{i}=v" for i in range(10))),
        ({f"k{i}": "v" * 200 for i in range(6)}, ""),  # over 1 KB in all
    ],
)
def test_tags_fal_would_drop_are_left_out(tags: dict[str, str], header: str) -> None:
    assert tags_header(tags) == header
