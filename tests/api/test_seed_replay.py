"""The seed's own client snippets, base URL and key swapped, against a live genqueue server:
curl (run by the shell), JavaScript ``fetch`` (run by node) and Python ``http.client``."""

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from api.fal.registry import SEED_EXAMPLE
from models import tasknames
from tests.api.seed import SEED_BASE, SEED_HOST, SEED_KEY, load_seed
from tests.api.support import RecordingPublisher, auth, live_server

SEED = load_seed()


@pytest.fixture(scope="module")
def base_url(api_app: FastAPI) -> Iterator[str]:
    with live_server(api_app) as url:
        yield url


def _check_handle(output: str, base_url: str, key: str, recorder: RecordingPublisher) -> None:
    handle: dict[str, Any] = json.loads(output)
    assert set(handle) == set(SEED.response_example)
    assert handle["status"] == "IN_QUEUE"
    assert (handle["logs"], handle["metrics"]) == (None, {})
    assert isinstance(handle["queue_position"], int)
    rid = handle["request_id"]
    assert handle["response_url"] == f"{base_url}/fal-ai/flux-pro/requests/{rid}"
    assert handle["status_url"] == handle["response_url"] + "/status"
    assert handle["cancel_url"] == handle["response_url"] + "/cancel"
    assert (tasknames.SUBMIT_MANY, [[rid]]) in recorder.published
    # the URLs it handed out work with the same key, as the relay's do
    status = httpx.get(handle["status_url"], headers={"Authorization": f"Bearer {key}"})
    assert (status.status_code, status.json()["status"]) == (202, "IN_QUEUE")
    record = httpx.get(f"{base_url}/v1/generations/{rid}", headers=auth(key)).json()
    assert {k: record["input"][k] for k in SEED_EXAMPLE} == SEED_EXAMPLE


def _swap(snippet: str, base_url: str, key: str) -> str:
    assert SEED_BASE in snippet or SEED_HOST in snippet
    return snippet.replace(SEED_BASE, base_url).replace(SEED_KEY, key)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl(base_url: str, key: str, recorder: RecordingPublisher) -> None:
    command = _swap(SEED.curl, base_url, key)
    done = subprocess.run(
        ["bash", "-c", command + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    _check_handle(done.stdout, base_url, key, recorder)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_seed_javascript_fetch(base_url: str, key: str, recorder: RecordingPublisher) -> None:
    script = _swap(SEED.javascript, base_url, key)
    done = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert not done.stdout.startswith("error"), done.stdout
    _check_handle(done.stdout, base_url, key, recorder)


def test_seed_python_http_client(base_url: str, key: str, recorder: RecordingPublisher) -> None:
    netloc = urlsplit(base_url).netloc
    script = SEED.python.replace(
        f'http.client.HTTPSConnection("{SEED_HOST}")', f'http.client.HTTPConnection("{netloc}")'
    )
    assert script != SEED.python
    script = script.replace(SEED_KEY, key)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    _check_handle(done.stdout, base_url, key, recorder)


def test_seed_snippets_with_a_wrong_key_get_a_json_401(base_url: str) -> None:
    command = _swap(SEED.curl, base_url, "gq_wrong")
    done = subprocess.run(
        ["bash", "-c", command + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(done.stdout) == {"detail": "Invalid or revoked API key"}
