"""Cancel in every state, with and without the app honouring it."""

from tests.simulator.helpers import SimClient

CANCELLED_BODY = {"detail": "Request cancelled by client", "error_type": "client_cancelled"}


def test_cancel_while_queued_removes_the_job(api: SimClient) -> None:
    api.submit("blocker")
    handle = api.submit("victim")
    response = api.cancel(handle)
    assert (response.status_code, response.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = api.status(handle)
    assert status.status_code == 200
    body = status.json()
    assert (body["status"], body["error_type"], body["error"]) == (
        "COMPLETED",
        "client_cancelled",
        "Request cancelled by client",
    )
    assert body["metrics"] == {}
    result = api.result(handle)
    assert (result.status_code, result.json()) == (499, CANCELLED_BODY)
    assert result.headers["x-fal-error-type"] == "client_cancelled"
    info = api.info(handle["request_id"])
    assert (info["state"], info["outcome"], info["cancel_requested"]) == (
        "COMPLETED",
        "cancelled",
        True,
    )
    assert info["started_at"] is None
    assert info["completed_at"] is not None
    assert info["calls"] == {"submit": 1, "status": 1, "result": 1, "cancel": 1}


def test_cancel_while_running_ends_it_at_once_when_honoured(api: SimClient) -> None:
    handle = api.submit("running")
    after = api.submit("next")
    api.advance(3.0)
    assert api.cancel(handle).status_code == 202
    assert api.status(handle).json()["error_type"] == "client_cancelled"
    assert api.result(handle).status_code == 499
    assert api.status(after).json()["status"] == "IN_PROGRESS"  # the slot was freed
    api.advance(10.0)
    assert api.result(after).status_code == 200


def test_cancel_while_running_is_ignored_when_not_honoured(api: SimClient) -> None:
    api.sim.configure(honor_cancel=False)
    handle = api.submit("stubborn")
    api.advance(3.0)
    assert api.cancel(handle).status_code == 202
    assert api.status(handle).json()["status"] == "IN_PROGRESS"
    assert api.result(handle).status_code == 400
    api.advance(7.0)
    assert api.result(handle).status_code == 200
    info = api.info(handle["request_id"])
    assert (info["outcome"], info["cancel_requested"]) == ("ok", True)


def test_cancel_while_queued_is_honoured_even_when_running_jobs_ignore_it(api: SimClient) -> None:
    api.sim.configure(honor_cancel=False)
    api.submit("blocker")
    handle = api.submit("victim")
    assert api.cancel(handle).status_code == 202
    assert api.result(handle).status_code == 499


def test_cancel_after_completion_is_400_already_completed(api: SimClient) -> None:
    handle = api.submit()
    api.advance(10.0)
    response = api.cancel(handle)
    assert (response.status_code, response.json()) == (400, {"status": "ALREADY_COMPLETED"})
    assert api.result(handle).status_code == 200


def test_second_cancel_of_a_cancelled_job_is_already_completed(api: SimClient) -> None:
    handle = api.submit()
    assert api.cancel(handle).status_code == 202
    assert api.cancel(handle).status_code == 400
    assert api.sim.stats()["responses"]["cancel:400"] == 1
