"""Fault injection over real HTTP: every kind, and the rule knobs (times, probability, match)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pydantic import ValidationError

from genqueue.net import wait_until
from simulator import FaultRule
from tests.simulator.helpers import MODEL, SimClient

DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_http_fault_answers_without_request_id(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="http", status_code=503, times=1))
    response = api.http.post(f"/{MODEL}", json={"prompt": "x"})
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
    assert "x-fal-request-id" not in response.headers
    assert api.sim.stats()["jobs"]["in_progress"] == 0
    assert api.sim.submits() == []
    assert api.http.post(f"/{MODEL}", json={"prompt": "x"}).status_code == 200
    stats = api.sim.stats()
    assert stats["calls"]["submit"] == 2
    assert stats["responses"] == {"submit:503": 1, "submit:200": 1}


def test_http_fault_with_custom_body_headers_and_delay(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(
        FaultRule(
            op="status",
            kind="http",
            status_code=500,
            body={"detail": "boom", "error_type": "internal_error"},
            headers={"X-Fal-Retryable": "true"},
            delay=0.2,
        )
    )
    started = time.monotonic()
    response = api.status(handle)
    assert time.monotonic() - started >= 0.2
    assert response.json() == {"detail": "boom", "error_type": "internal_error"}
    assert response.headers["x-fal-retryable"] == "true"
    assert api.info(handle["request_id"])["calls"]["status"] == 1


def test_retry_after_is_a_429_with_the_header(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="retry_after", retry_after=2, times=2))
    for _ in range(2):
        response = api.http.post(f"/{MODEL}", json={"prompt": "x"})
        assert (response.status_code, response.headers["retry-after"]) == (429, "2")
        assert response.json() == {"detail": "Too many requests"}
    assert api.http.post(f"/{MODEL}", json={"prompt": "x"}).status_code == 200
    assert api.sim.stats()["responses"]["submit:429"] == 2


def test_ingress_502_looks_like_nginx(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="result", kind="ingress_502"))
    response = api.result(handle)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "nginx" in response.text
    assert "x-fal-request-id" not in response.headers


def test_hang_holds_past_the_client_read_timeout(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="hang", delay=2.0, times=1))
    with pytest.raises(httpx.ReadTimeout):
        api.http.get(handle["status_url"], timeout=httpx.Timeout(5.0, read=0.2))
    assert api.status(handle).status_code == 202
    assert api.sim.stats()["responses"] == {"submit:200": 1, "status:hang": 1, "status:202": 1}


def test_hang_then_answers_normally_with_the_state_of_then(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="hang", delay=0.3, times=1))
    with httpx.Client(timeout=5.0) as other, ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(other.get, handle["status_url"])
        wait_until(
            lambda: api.sim.stats()["responses"].get("status:hang"),
            5.0,
            interval=0.01,
            what="the hang",
        )
        api.advance(10.0)  # the job finishes while the call is held
        response = pending.result(timeout=5.0)
    assert time.monotonic() - started >= 0.3
    assert (response.status_code, response.json()["status"]) == (200, "COMPLETED")


def test_hung_submit_creates_no_job_when_the_client_gives_up(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="hang", delay=0.4, times=1))
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(f"/{MODEL}", json={"prompt": "x"}, timeout=httpx.Timeout(5.0, read=0.1))
    time.sleep(0.5)  # past the hold: the server must not create the job afterwards
    assert api.sim.submits() == []
    assert api.sim.stats()["calls"]["submit"] == 1


def test_reset_drops_the_connection(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="reset", times=1))
    with pytest.raises(DROPPED):
        api.status(handle)
    assert api.status(handle).status_code == 202
    assert api.sim.stats()["responses"]["status:reset"] == 1


def test_reset_of_a_fresh_connection_sends_nothing(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="reset"))
    for _ in range(3):
        with httpx.Client(timeout=5.0) as fresh, pytest.raises(DROPPED):
            fresh.post(f"{api.server.url}/{MODEL}", json={"prompt": "x"})
    assert api.sim.stats()["calls"]["submit"] == 3
    assert api.sim.submits() == []


def test_malformed_body_is_not_json(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="malformed", times=1))
    response = api.status(handle)
    assert response.status_code == 202
    with pytest.raises(json.JSONDecodeError):
        response.json()
    api.sim.add_fault(FaultRule(op="submit", kind="malformed", times=1))
    assert api.http.post(f"/{MODEL}", json={"prompt": "x"}).status_code == 200
    assert api.sim.stats()["responses"]["status:malformed"] == 1


def test_model_error_completes_the_job_as_a_failure(api: SimClient) -> None:
    api.sim.add_fault(
        FaultRule(
            op="submit", kind="model_error", status_code=503, error_type="runner_disconnected"
        )
    )
    handle = api.submit()
    api.advance(10.0)
    status = api.status(handle).json()
    assert (status["status"], status["error"], status["error_type"]) == (
        "COMPLETED",
        "Runner disconnected",
        "runner_disconnected",
    )
    result = api.result(handle)
    assert result.status_code == 503
    assert result.json() == {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    assert result.headers["x-fal-error-type"] == "runner_disconnected"
    assert result.headers["x-fal-request-id"] == handle["request_id"]


def test_model_error_with_a_custom_body(api: SimClient) -> None:
    body = {
        "detail": [
            {"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}
        ]
    }
    api.sim.add_fault(
        FaultRule(
            kind="model_error", status_code=422, error_type="content_policy_violation", body=body
        )
    )
    handle = api.submit()
    api.advance(10.0)
    result = api.result(handle)
    assert (result.status_code, result.json()) == (422, body)


def test_accept_then_reset_creates_the_job_and_drops_the_answer(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="accept_then_reset", times=1))
    with pytest.raises(DROPPED):
        api.http.post(f"/{MODEL}", json={"prompt": "ambiguous"})
    [record] = api.sim.submits()
    assert record["request_id"] is not None
    assert record["status_code"] == 200
    info = api.info(record["request_id"])
    assert info["state"] == "IN_PROGRESS"
    assert info["calls"]["submit"] == 1
    stats = api.sim.stats()
    assert stats["jobs"]["in_progress"] == 1
    assert stats["responses"] == {"submit:accept_then_reset": 1}


def test_accept_then_hang_creates_the_job_and_holds_the_answer(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="accept_then_hang", delay=2.0, times=1))
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(f"/{MODEL}", json={"prompt": "x"}, timeout=httpx.Timeout(5.0, read=0.2))
    [record] = api.sim.submits()
    assert api.info(record["request_id"])["state"] == "IN_PROGRESS"


def test_accept_then_hang_answers_late_when_the_client_waits(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="accept_then_hang", delay=0.2, times=1))
    started = time.monotonic()
    handle = api.submit()
    assert time.monotonic() - started >= 0.2
    assert api.sim.submits()[0]["request_id"] == handle["request_id"]


def test_expire_result_on_result_calls(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="result", kind="expire_result", times=1))
    assert api.result(handle).status_code == 400  # not completed: the rule waits
    api.advance(10.0)
    gone = api.result(handle)
    assert (gone.status_code, gone.json()) == (404, {"detail": "Request not found"})
    assert api.result(handle).status_code == 404  # gone for good
    assert api.sim.faults() == []


def test_expire_result_flagged_at_submit(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="expire_result", match_prompt="lost"))
    lost, kept = api.submit("lost one"), api.submit("kept one")
    api.advance(20.0)
    assert api.result(lost).status_code == 404
    assert api.result(kept).status_code == 200


def test_match_prompt_uses_the_jobs_prompt_for_later_calls(api: SimClient) -> None:
    api.sim.configure(capacity=None)
    target, other = api.submit("please fail [x]"), api.submit("fine")
    api.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, match_prompt="[x]"))
    assert api.status(target).status_code == 500
    assert api.status(other).status_code == 202


def test_any_op_applies_to_every_call(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="any", kind="http", status_code=418, times=4))
    codes = [
        api.http.post(f"/{MODEL}", json={"prompt": "x"}).status_code,
        api.status(handle).status_code,
        api.result(handle).status_code,
        api.cancel(handle).status_code,
    ]
    assert codes == [418] * 4
    assert api.status(handle).status_code == 202


def test_probability_is_seeded(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, probability=0.5))
    codes = [api.status(handle).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35
    assert codes.count(202) == 40 - codes.count(500)
    api.sim.reset()
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, probability=0.5))
    again = [api.status(handle).status_code for _ in range(40)]
    assert again == codes  # reset re-seeds the RNG


def test_first_matching_rule_wins_and_clear_removes_all(api: SimClient) -> None:
    handle = api.submit()
    api.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, times=1))
    api.sim.add_fault(FaultRule(op="status", kind="http", status_code=503))
    assert [api.status(handle).status_code for _ in range(3)] == [500, 503, 503]
    api.sim.clear_faults()
    assert api.status(handle).status_code == 202


def test_invalid_rules_are_rejected() -> None:
    with pytest.raises(ValidationError):
        FaultRule(op="status", kind="model_error")
    with pytest.raises(ValidationError):
        FaultRule(op="cancel", kind="expire_result")
    with pytest.raises(ValidationError):
        FaultRule.model_validate({"kind": "explode"})
    with pytest.raises(ValidationError):
        FaultRule(probability=1.5)


def test_rule_json_round_trip() -> None:
    rule = FaultRule(op="submit", kind="retry_after", retry_after=3, times=2, match_prompt="p")
    assert FaultRule.model_validate_json(rule.model_dump_json()) == rule


def test_faults_do_not_break_the_server(api: SimClient) -> None:
    api.sim.add_fault(FaultRule(op="status", kind="reset", times=5))
    handle = api.submit()
    for _ in range(5):
        with pytest.raises(DROPPED):
            api.status(handle)
    wait_until(
        lambda: api.status(handle).status_code == 202,
        5.0,
        interval=0.01,
        what="normal answers again",
    )
