import pytest

from worker.upstream import app_base, rewrite_url
from worker.upstream.protocol import normalize_base_url, submit_url

FAL_STATUS = "https://queue.fal.run/fal-ai/flux-pro/requests/r1/status"


@pytest.mark.parametrize(
    ("endpoint_id", "expected"),
    [
        ("fal-ai/flux-pro/kontext/text-to-image", "fal-ai/flux-pro"),
        ("fal-ai/flux-pro/kontext/max/text-to-image", "fal-ai/flux-pro"),
        ("fal-ai/flux-pro/kontext", "fal-ai/flux-pro"),
        ("fal-ai/flux-pro", "fal-ai/flux-pro"),
        ("/fal-ai/flux-pro/kontext/", "fal-ai/flux-pro"),
        ("workflows/someone/my-flow", "workflows/someone/my-flow"),
        ("workflows/someone/my-flow/sub/path", "workflows/someone/my-flow"),
        ("comfy/someone/graph/run", "comfy/someone/graph"),
    ],
)
def test_app_base_keeps_owner_and_app(endpoint_id: str, expected: str) -> None:
    assert app_base(endpoint_id) == expected


@pytest.mark.parametrize(
    "endpoint_id",
    ["", "fal-ai", "workflows/someone", "fal-ai//x", "fal-ai/../etc", "fal-ai/app?x=1", "a/b c"],
)
def test_app_base_rejects_malformed_ids(endpoint_id: str) -> None:
    with pytest.raises(ValueError, match="invalid endpoint id"):
        app_base(endpoint_id)


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        (
            FAL_STATUS,
            "https://api.quickrouter.ai",
            "https://api.quickrouter.ai/fal-ai/flux-pro/requests/r1/status",
        ),
        (
            FAL_STATUS,
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/fal-ai/flux-pro/requests/r1/status",
        ),
        (
            FAL_STATUS,
            "http://127.0.0.1:8000/",
            "http://127.0.0.1:8000/fal-ai/flux-pro/requests/r1/status",
        ),
        (
            FAL_STATUS,
            "https://relay.example/fal",
            "https://relay.example/fal/fal-ai/flux-pro/requests/r1/status",
        ),
        (
            FAL_STATUS,
            "https://relay.example/fal/",
            "https://relay.example/fal/fal-ai/flux-pro/requests/r1/status",
        ),
        # already under the prefix (a relay that rewrites its own URLs): not doubled
        (
            "https://relay.example/fal/fal-ai/flux-pro/requests/r1",
            "https://relay.example/fal",
            "https://relay.example/fal/fal-ai/flux-pro/requests/r1",
        ),
        # "/fal-ai" does not start with the segment "/fal"
        (
            "https://queue.fal.run/fal-ai/flux-pro/requests/r1",
            "https://relay.example/fal",
            "https://relay.example/fal/fal-ai/flux-pro/requests/r1",
        ),
        # the SDK's trailing slashes and a query survive
        (
            "https://queue.fal.run/fal-ai/flux-pro/requests/r1/status/?logs=1",
            "https://relay.example",
            "https://relay.example/fal-ai/flux-pro/requests/r1/status/?logs=1",
        ),
        # scheme is the base's too
        (
            "http://queue.fal.run/fal-ai/flux-pro/requests/r1",
            "https://q:8443",
            "https://q:8443/fal-ai/flux-pro/requests/r1",
        ),
    ],
)
def test_rewrite_url_moves_host_and_keeps_path(url: str, base: str, expected: str) -> None:
    assert rewrite_url(url, base) == expected
    assert rewrite_url(expected, base) == expected  # idempotent


def test_rewrite_url_rejects_a_base_without_host() -> None:
    with pytest.raises(ValueError, match="base URL must be http"):
        rewrite_url(FAL_STATUS, "relay.example")


def test_submit_url_uses_full_endpoint_path_and_encodes_webhook() -> None:
    base = "https://relay.example/fal"
    endpoint = "fal-ai/flux-pro/kontext/text-to-image"
    assert submit_url(base, endpoint) == f"{base}/{endpoint}"
    assert (
        submit_url(base, endpoint, webhook_url="https://hooks.example/cb?job=1&x=a b")
        == f"{base}/{endpoint}?fal_webhook=https%3A%2F%2Fhooks.example%2Fcb%3Fjob%3D1%26x%3Da+b"
    )


@pytest.mark.parametrize(
    "bad", ["", "queue.fal.run", "ftp://queue.fal.run", "https://", "https://h/?q=1"]
)
def test_normalize_base_url_rejects_non_http_bases(bad: str) -> None:
    with pytest.raises(ValueError, match="upstream base URL must"):
        normalize_base_url(bad)


def test_normalize_base_url_strips_trailing_slash() -> None:
    assert normalize_base_url("https://relay.example/fal/") == "https://relay.example/fal"
    assert normalize_base_url("https://queue.fal.run/") == "https://queue.fal.run"
