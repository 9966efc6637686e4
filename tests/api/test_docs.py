"""/docs and /redoc work offline: every script, style sheet and icon they load comes from
genqueue itself (a packaged copy), none from a CDN."""

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")
URL_IN_SCRIPT = re.compile(r"""["'](https?://[^"']+|//[^"']+)["']""")


def references(html: str) -> list[str]:
    found = [a or b for a, b in REFERENCE.findall(html)]
    return found + URL_IN_SCRIPT.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_nothing_from_another_host(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    refs = references(answer.text)
    assert refs, "the page loads its scripts from somewhere"
    outside = [ref for ref in refs if urlsplit(ref).netloc not in ("", "testserver")]
    assert outside == [], f"{page} loads from another host: {outside}"
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    scripts = [ref for ref in refs if ref.endswith(".js")]
    assert scripts, "Swagger UI's or ReDoc's script is served by genqueue"


def test_swagger_ui_fetches_no_validator_badge(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text
