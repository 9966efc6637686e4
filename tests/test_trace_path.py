"""The trace behind README's count of the files a generation passes through keeps working."""

from tests.support.trace_path import report, trace


def test_one_generation_is_followed_from_the_route_to_completed() -> None:
    result = trace()

    assert result.status == "completed"
    assert {"api/routes/fal.py", "models/generations.py"} <= result.api
    assert {"worker/upstream/client.py", "models/state.py"} <= result.worker
    assert not any(f.startswith(("tests/", "simulator/")) for f in result.total)
    assert f"distinct files, API and worker together: {len(result.total)}" in report(result)
