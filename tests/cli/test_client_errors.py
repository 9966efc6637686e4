"""Every client failure is one line on stderr with a non-zero exit code that says what kind."""

import pytest

from genqueue.errors import EXIT_AUTH, EXIT_ERROR, EXIT_INVALID, EXIT_UNREACHABLE
from genqueue.net import free_port
from tests.cli.conftest import Cli
from tests.cli.stub_api import StubApi

ID = "0b6a8f5e-2f6c-4a4b-9f5e-6d1f0c8a1e11"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    assert lines[0].startswith("error: ")
    return lines[0]


def test_connection_refused_names_the_url(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("GENQUEUE_API_URL", url)
    run = cli("ls")
    assert run.code == EXIT_UNREACHABLE
    line = one_line(run.err)
    assert url in line
    assert "connection refused" in line
    assert run.out == ""


def test_refused_key_says_so(cli: Cli, api: StubApi) -> None:
    api.on("GET", f"/v1/generations/{ID}", (401, {"detail": "invalid API key"}))
    run = cli("status", ID)
    assert run.code == EXIT_AUTH
    line = one_line(run.err)
    assert "refused the key" in line
    assert "GENQUEUE_API_KEY" in line
    assert api.requests[0]["headers"]["Authorization"] == "Bearer gq_test_key"


def test_missing_key_says_how_to_get_one(
    cli: Cli, api: StubApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENQUEUE_API_KEY")
    api.on("GET", "/v1/generations", (401, {"detail": "missing API key"}))
    run = cli("ls")
    assert run.code == EXIT_AUTH
    line = one_line(run.err)
    assert "no API key" in line
    assert "genqueue keys create" in line
    assert "Authorization" not in api.requests[0]["headers"]


def test_invalid_input_lists_the_fields(cli: Cli, api: StubApi) -> None:
    detail = [
        {
            "loc": ["body", "input", "prompt"],
            "msg": "String should have at least 1 character",
            "type": "string_too_short",
        },
        {
            "loc": ["body", "input", "num_images"],
            "msg": "Input should be less than or equal to 4",
            "type": "less_than_equal",
        },
    ]
    api.on("POST", "/v1/generations", (422, {"detail": detail}))
    run = cli("submit", "", "--num-images", "9")
    assert run.code == EXIT_INVALID
    line = one_line(run.err)
    assert "input.prompt: String should have at least 1 character" in line
    assert "input.num_images: Input should be less than or equal to 4" in line
    assert api.requests[0]["body"] == {
        "model": "fal-ai/flux-pro/kontext/text-to-image",
        "input": {"prompt": "", "num_images": 9},
    }


def test_unknown_generation(cli: Cli, api: StubApi) -> None:
    api.on("GET", f"/v1/generations/{ID}", (404, {"detail": "generation not found"}))
    run = cli("status", ID)
    assert run.code == EXIT_ERROR
    assert "generation not found" in one_line(run.err)


def test_server_error_is_one_line(cli: Cli, api: StubApi) -> None:
    api.on("POST", f"/v1/generations/{ID}/cancel", (503, {"detail": "database unavailable"}))
    run = cli("cancel", ID)
    assert run.code == EXIT_ERROR
    assert "HTTP 503: database unavailable" in one_line(run.err)


def test_not_an_api(cli: Cli, monkeypatch: pytest.MonkeyPatch, api: StubApi) -> None:
    monkeypatch.setenv("GENQUEUE_API_URL", "ftp://example.invalid")
    run = cli("ls")
    assert run.code == EXIT_UNREACHABLE
    assert "ftp://example.invalid" in one_line(run.err)


def test_invalid_settings_are_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_API_PORT", "not-a-port")
    run = cli("migrate")
    assert run.code == EXIT_INVALID
    assert "GENQUEUE_API_PORT" in one_line(run.err)


def test_a_media_store_it_cannot_use_stops_the_start_in_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked when the settings are read, not when the worker's first task opens the store
    (then every task, submits and polls too, would fail on it)."""
    monkeypatch.setenv("GENQUEUE_MEDIA_STORE", "ftp://files.example/media")
    run = cli("migrate")
    assert run.code == EXIT_INVALID
    assert one_line(run.err) == (
        "error: invalid settings: GENQUEUE_MEDIA_STORE: media store "
        "'ftp://files.example/media': the scheme must be file:// or s3://"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["submit", "a tiger eye", "--guidance-scale", "abc"], "'--guidance-scale'"),
        (["submit"], "Missing argument 'prompt'"),
        (["submit", "x", "--wat"], "No such option: --wat"),
        (["ls", "--limit", "0"], "'--limit'"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_a_refused_command_line_is_one_line_with_code_2(
    cli: Cli, api: StubApi, args: list[str], says: str
) -> None:
    run = cli(*args)
    assert run.code == EXIT_INVALID
    line = one_line(run.err)
    assert says in line, line
    assert "--help`" in line, line
    assert run.out == ""
    assert api.requests == [], "nothing was sent"


def test_bare_group_still_shows_its_help(cli: Cli) -> None:
    run = cli("keys")
    assert run.code == EXIT_INVALID
    assert "create" in run.out + run.err
    assert "revoke" in run.out + run.err


def test_ls_sends_the_limit_it_was_given(cli: Cli, api: StubApi) -> None:
    api.on("GET", "/v1/generations", (200, {"items": [], "next_cursor": None}))
    assert cli("ls", "--limit", "1").code == 0
    assert "limit=1" in api.requests[0]["path"]


def test_a_cancelled_generation_says_cancelled_once(cli: Cli, api: StubApi) -> None:
    cancelled = {
        "id": ID,
        "status": "cancelled",
        "error": {
            "type": "cancelled",
            "message": "Request cancelled by client",
            "http_status": 499,
            "error_type": "client_cancelled",
        },
    }
    api.on("POST", "/v1/generations", (201, {**cancelled, "status": "pending", "error": None}))
    api.on("GET", f"/v1/generations/{ID}", (200, cancelled))
    run = cli("submit", "a tiger eye", "--wait")
    assert run.code == EXIT_ERROR
    last = run.err.strip().splitlines()[-1]
    assert last == (
        f"error: generation {ID} cancelled: Request cancelled by client (upstream HTTP 499)"
    )


def test_cancelling_an_ended_generation_says_so(cli: Cli, api: StubApi) -> None:
    body = {"status": "completed", "detail": "Generation has already ended (completed)"}
    api.on("POST", f"/v1/generations/{ID}/cancel", (409, body))
    run = cli("cancel", ID)
    assert run.code == EXIT_ERROR
    line = one_line(run.err)
    assert line == f"error: generation {ID} has already ended (completed): nothing to cancel"
    assert "HTTP" not in line


def test_status_and_cancel_take_a_unique_id_prefix(cli: Cli, api: StubApi) -> None:
    record = {"id": ID, "model": "m", "status": "running", "input": {"prompt": "x"}}
    api.on("GET", "/v1/generations", (200, {"items": [record], "next_cursor": None}))
    api.on("GET", f"/v1/generations/{ID}", (200, record))
    api.on("POST", f"/v1/generations/{ID}/cancel", (202, {"outcome": "requested"}))
    shown = cli("status", ID[:6])
    assert shown.code == 0, shown.err
    assert ID in shown.out
    cancelled = cli("cancel", ID[:6])
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.startswith(f"{ID}: ")
    lookups = [r["path"] for r in api.requests if r["path"].startswith("/v1/generations?")]
    assert all(f"id_prefix={ID[:6]}" in path and "limit=2" in path for path in lookups)
    assert len(lookups) == 2


def test_an_ambiguous_prefix_is_refused(cli: Cli, api: StubApi) -> None:
    other = ID[:6] + "00-0000-4000-8000-000000000000"
    items = [{"id": ID}, {"id": other}]
    api.on("GET", "/v1/generations", (200, {"items": items, "next_cursor": None}))
    run = cli("status", ID[:6])
    assert run.code == EXIT_INVALID
    line = one_line(run.err)
    assert ID in line
    assert other in line
    assert "more than one" in line
    assert not any(r["path"].startswith(f"/v1/generations/{ID}") for r in api.requests)


def test_a_prefix_of_nothing_is_not_found(cli: Cli, api: StubApi) -> None:
    api.on("GET", "/v1/generations", (200, {"items": [], "next_cursor": None}))
    run = cli("status", "abc")
    assert run.code == EXIT_ERROR
    assert "no generation's id begins with 'abc'" in one_line(run.err)


def test_deleting_a_running_generation_says_cancel_first(cli: Cli, api: StubApi) -> None:
    body = {"detail": "Generation has not ended (running): cancel it first"}
    api.on("DELETE", f"/v1/generations/{ID}", (409, body))
    run = cli("delete", ID)
    assert run.code == EXIT_ERROR
    line = one_line(run.err)
    assert line == (
        f"error: generation {ID} has not ended: cancel it first (`genqueue cancel {ID}`), "
        "then delete it"
    )


def test_deleting_an_unknown_generation_is_one_line(cli: Cli, api: StubApi) -> None:
    api.on("DELETE", f"/v1/generations/{ID}", (404, {"detail": "Generation not found"}))
    run = cli("delete", ID)
    assert run.code == EXIT_ERROR
    assert one_line(run.err) == "error: not found: Generation not found"
