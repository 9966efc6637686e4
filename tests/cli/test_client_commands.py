"""submit/status/cancel/ls against a scripted API: requests sent, output printed, files saved."""

import base64
from pathlib import Path

from PIL import Image

from genqueue.client import decode_data_url, extension_for
from tests.cli.conftest import Cli
from tests.cli.stub_api import StubApi, png_bytes

ID = "5d7e0c1a-9a3e-4b8e-a6f1-1c2d3e4f5a6b"


def record(status: str, **extra: object) -> dict[str, object]:
    return {
        "id": ID,
        "model": "fal-ai/flux-pro/kontext/text-to-image",
        "status": status,
        "input": {"prompt": "a tiger eye"},
        "created_at": "2026-11-24T10:00:00Z",
        **extra,
    }


def test_submit_without_wait_prints_only_the_id(cli: Cli, api: StubApi) -> None:
    api.on("POST", "/v1/generations", (201, record("pending")))
    run = cli(
        "submit", "a tiger eye", "--aspect-ratio", "16:9", "--seed", "7", "--idempotency-key", "k-1"
    )
    assert run.code == 0, run.err
    assert run.out == f"{ID}\n"
    sent = api.requests[0]
    assert sent["body"]["input"] == {"prompt": "a tiger eye", "aspect_ratio": "16:9", "seed": 7}
    assert "await_media" not in sent["body"], "nobody waits for this one's files"
    assert sent["headers"]["Idempotency-Key"] == "k-1"


def test_submit_wait_follows_and_saves_images(cli: Cli, api: StubApi, tmp_path: Path) -> None:
    api.files["/files/a.png"] = png_bytes(64, 48)
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(8, 8)).decode()
    images = [
        {"url": f"{api.url}/files/a.png", "width": 64, "height": 48, "content_type": "image/png"},
        {"url": data_url, "width": 8, "height": 8, "content_type": "image/png"},
    ]
    api.on("POST", "/v1/generations", (201, record("pending")))
    api.on(
        "GET",
        f"/v1/generations/{ID}",
        (200, record("queued", queue_position=2)),
        (200, record("running")),
        (
            200,
            record(
                "completed",
                completed_at="2026-11-24T10:00:05Z",
                result={"images": images, "seed": 1},
            ),
        ),
    )
    out_dir = tmp_path / "images"
    run = cli(
        "submit",
        "a tiger eye",
        "--num-images",
        "2",
        "--output-format",
        "png",
        "--wait",
        "--out",
        str(out_dir),
    )
    assert run.code == 0, run.err
    paths = [Path(p) for p in run.out.split()]
    assert [p.name for p in paths] == [f"{ID}-0.png", f"{ID}-1.png"]
    with Image.open(paths[0]) as img:
        assert img.size == (64, 48)
    with Image.open(paths[1]) as img:
        assert img.size == (8, 8)
    assert "position 2" in run.err
    assert "running" in run.err
    assert "completed" in run.err
    image_request = next(r for r in api.requests if r["path"] == "/files/a.png")
    assert "Authorization" not in image_request["headers"], "the API key must not leave genqueue"


def test_submit_wait_failed_job_exits_non_zero(cli: Cli, api: StubApi) -> None:
    api.on("POST", "/v1/generations", (201, record("pending")))
    error = {"type": "upstream_error", "message": "model crashed", "http_status": 500}
    api.on("GET", f"/v1/generations/{ID}", (200, record("failed", error=error)))
    run = cli("submit", "a tiger eye", "--wait")
    assert run.code == 1
    last = run.err.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "failed" in last
    assert "model crashed" in last
    assert run.out == ""


def test_status_shows_record_and_events(cli: Cli, api: StubApi) -> None:
    events = [
        {"at": "2026-11-24T10:00:00Z", "kind": "created", "status": "pending"},
        {
            "at": "2026-11-24T10:00:01Z",
            "kind": "submitted",
            "status": "queued",
            "queue_position": 3,
            "detail": {"request_id": "req-42"},
        },
    ]
    api.on(
        "GET",
        f"/v1/generations/{ID}",
        (200, record("queued", queue_position=3, upstream_request_id="req-42", events=events)),
    )
    run = cli("status", ID)
    assert run.code == 0, run.err
    for text in (ID, "queued", "req-42", "a tiger eye", "events", "created", "submitted"):
        assert text in run.out


def test_ls_filters_by_status(cli: Cli, api: StubApi) -> None:
    api.on("GET", "/v1/generations", (200, {"items": [record("running")], "next_cursor": None}))
    run = cli("ls", "--status", "running")
    assert run.code == 0, run.err
    assert ID in run.out
    assert "running" in run.out
    assert "status=running" in api.requests[0]["path"]


def test_cancel_prints_the_outcome(cli: Cli, api: StubApi) -> None:
    api.on(
        "POST",
        f"/v1/generations/{ID}/cancel",
        (202, {"outcome": "requested", "generation": record("running")}),
    )
    run = cli("cancel", ID)
    assert run.code == 0, run.err
    assert run.out.startswith(f"{ID}: running (requested)")


def test_file_names_follow_the_content() -> None:
    assert extension_for("https://x/y/z.png", None, "jpeg") == "png"
    assert extension_for("https://x/y/z", "image/jpeg", "png") == "jpg"
    assert extension_for("data:image/webp;base64,AAAA", None, "jpeg") == "webp"
    assert extension_for("https://x/y/z", None, "jpeg") == "jpg"
    assert decode_data_url("data:text/plain,a%20b") == b"a b"


def test_submit_wait_downloads_genqueues_copy_once_stored(
    cli: Cli, api: StubApi, tmp_path: Path
) -> None:
    api.files["/media/copy.png"] = png_bytes(32, 16)  # upstream's URL answers nothing
    upstream = {"url": f"{api.url}/files/gone.png", "content_type": "image/png"}
    ours = {**upstream, "url": f"{api.url}/media/copy.png", "upstream_url": upstream["url"]}
    done = {"completed_at": "2026-11-24T10:00:05Z"}
    api.on("POST", "/v1/generations", (201, record("pending")))
    api.on(
        "GET",
        f"/v1/generations/{ID}",
        (200, record("completed", media_status="pending", result={"images": [upstream]}, **done)),
        (200, record("completed", media_status="pending", result={"images": [upstream]}, **done)),
        (200, record("completed", media_status="stored", result={"images": [ours]}, **done)),
    )
    run = cli("submit", "a tiger eye", "--wait", "--out", str(tmp_path))
    assert run.code == 0, run.err
    assert api.requests[0]["body"]["await_media"] is True, "--wait downloads: copy them first"
    [path] = [Path(p) for p in run.out.split()]
    with Image.open(path) as img:
        assert img.size == (32, 16)
    assert not any(r["path"] == "/files/gone.png" for r in api.requests)


def test_submit_wait_saves_files_at_any_depth_with_their_own_extensions(
    cli: Cli, api: StubApi, tmp_path: Path
) -> None:
    api.files["/files/clip"] = b"\x00\x00\x00\x18ftypmp42"
    api.files["/files/voice.wav"] = b"RIFF\x24\x00\x00\x00WAVE"
    api.files["/files/mesh"] = b"glTF"
    result = {
        "video": {"url": f"{api.url}/files/clip", "content_type": "video/mp4", "file_size": 12},
        "takes": [{"audio": {"url": f"{api.url}/files/voice.wav"}}],
        "scene": {"parts": [{"mesh": {"url": f"{api.url}/files/mesh", "file_name": "a.glb"}}]},
        "seed": 3,
    }
    done = {"completed_at": "2026-11-24T10:00:05Z", "result": result}
    api.on("POST", "/v1/generations", (201, record("pending")))
    api.on("GET", f"/v1/generations/{ID}", (200, record("completed", **done)))
    run = cli("submit", "a tiger eye", "--wait", "--out", str(tmp_path))
    assert run.code == 0, run.err
    paths = [Path(p) for p in run.out.split()]
    assert [p.name for p in paths] == [f"{ID}-0.mp4", f"{ID}-1.wav", f"{ID}-2.glb"]
    assert paths[0].read_bytes() == api.files["/files/clip"]
    assert paths[1].read_bytes().startswith(b"RIFF")
    assert paths[2].read_bytes() == b"glTF"


def test_delete_sends_delete_and_says_what_went(cli: Cli, api: StubApi) -> None:
    api.on("DELETE", f"/v1/generations/{ID}", (204, None))
    run = cli("delete", ID)
    assert run.code == 0, run.err
    assert [(r["method"], r["path"]) for r in api.requests] == [("DELETE", f"/v1/generations/{ID}")]
    assert run.out.startswith(f"{ID}: deleted (its result, input and files")
