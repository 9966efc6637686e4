"""The console in a real browser (Debian's Chromium through Playwright) against the real
stack of its own: a database and Redis database, the API serving /console, a Celery worker and
beat, the simulator over HTTP.

Each test opens its own browser context (its own sessionStorage, so its own sign-in) in the
session's one browser. Screenshots of the list and the generation page go to
``artifacts/console/`` (``GENQUEUE_TEST_ARTIFACTS``)."""

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from api.fal.registry import SEED_EXAMPLE
from genqueue.net import wait_until
from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.tenants import set_tenant
from tests.api.support import MODEL, auth, new_key, stored
from tests.support.browser import screenshot_path
from tests.support.services import postgres_database, redis_database
from tests.support.stack import SimAdmin, Stack, running_stack

pytestmark = pytest.mark.integration


SIM_DEFAULTS: dict[str, Any] = {"run_time": 1.0, "capacity": 4, "honor_cancel": True}


@dataclass
class Console:
    url: str
    http: httpx.Client

    def create(self, key: str, prompt: str) -> str:
        body = {"model": MODEL, "input": {"prompt": prompt}}
        answer = self.http.post("/v1/generations", json=body, headers=auth(key))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def record(self, key: str, gid: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/generations/{gid}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()
        return record

    def wait_status(self, key: str, gid: str, *statuses: str, timeout: float = 30) -> None:
        wait_until(
            lambda: self.record(key, gid)["status"] in statuses,
            timeout,
            interval=0.1,
            what=f"{gid} to be {' or '.join(statuses)}",
        )


@pytest.fixture(scope="module")
def console_stack() -> Iterator[tuple[Stack, sessionmaker[Session]]]:
    """A stack of this module's own (database, Redis database, worker, beat, simulator, API):
    these tests take the simulator's one slot on purpose, and rows other tests leave in the
    session's database must not take it from them. The API's streams check every 0.1 s."""
    with postgres_database() as url, redis_database() as broker:
        upgrade(url)
        engine = make_engine(url)
        env = {"GENQUEUE_STREAM_POLL_INTERVAL": "0.1", "GENQUEUE_MEDIA_TIMEOUT": "4"}
        try:
            with running_stack(
                database_url=url, broker_url=broker, extra_env=env, with_api=True
            ) as stack:
                yield stack, make_session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def console(console_stack: tuple[Stack, sessionmaker[Session]]) -> Iterator[Console]:
    stack, _ = console_stack
    with httpx.Client(base_url=stack.api_url, timeout=20) as http:
        yield Console(stack.api_url, http)


@pytest.fixture
def sessions(console_stack: tuple[Stack, sessionmaker[Session]]) -> sessionmaker[Session]:
    return console_stack[1]


@pytest.fixture
def sim(console_stack: tuple[Stack, sessionmaker[Session]]) -> Iterator[SimAdmin]:
    admin = console_stack[0].sim
    admin.clear_faults()
    admin.configure(**SIM_DEFAULTS)
    yield admin
    admin.clear_faults()
    admin.configure(**SIM_DEFAULTS)


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors  # no script of the console threw


def sign_in(page: Page, key: str) -> None:
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")  # no key in this tab yet
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")


def statuses_until(page: Page, last: str, timeout: float) -> list[str]:
    """The status badge's texts as they change on the page, until ``last``."""
    seen: list[str] = []
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        text = page.locator("#status").inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if text == last:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the page never showed {last}: {seen}")


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls a screen reader could not name (no label, no aria-label)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((c) => c.type !== "hidden" && !c.labels.length && !c.getAttribute("aria-label"))
            .map((c) => c.outerHTML)"""
    )
    return found


def natural_width(page: Page, selector: str) -> int:
    image = page.locator(selector).first
    image.wait_for()
    width = 0

    def rendered() -> bool:
        nonlocal width
        width = int(image.evaluate("img => img.complete ? img.naturalWidth : 0"))
        return width > 0

    wait_until(rendered, 30, interval=0.1, what=f"{selector} to render")
    return width


def test_submit_the_seed_example_from_the_form_and_watch_it_to_completion(
    page: Page, console: Console, sim: SimAdmin, sessions: sessionmaker[Session]
) -> None:
    """The tenant's cap (1) holds the new job pending behind its own running job; another
    tenant's job takes the simulator's one slot next, so it then waits queued upstream; then
    it runs and completes. Every state lasts seconds, and the page shows each as it comes."""
    sim.configure(capacity=1, run_time=5.0)
    tenant = f"console-{uuid.uuid4().hex[:8]}"
    key, other = new_key(sessions, tenant=tenant), new_key(sessions)
    with sessions.begin() as session:
        set_tenant(session, tenant, {"max_in_flight": 1})
    try:
        sign_in(page, key)
        page.get_by_role("link", name="New").click()
        expect(page.locator("#submit-form")).to_have_attribute("data-ready", "true")
        page.get_by_role("button", name="Fill in the model's example").click()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value(SEED_EXAMPLE["prompt"])
        expect(page.get_by_label("Aspect ratio", exact=True)).to_have_value("1:1")
        expect(page.get_by_label("Safety tolerance", exact=True)).to_have_value("2")

        blocker = console.create(key, "the tenant's own job, live upstream")
        console.wait_status(key, blocker, "queued", "running")
        ahead = console.create(other, "another tenant's job, next in upstream's queue")
        console.wait_status(other, ahead, "queued", "running")
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url("**/console/generations/*")
        gid = page.url.rsplit("/", 1)[1]
        page.evaluate("() => { window.gqSamePage = true; }")  # gone if the page reloads

        seen = statuses_until(page, "completed", timeout=60)
        shown = [s for s in seen if s not in ("loading…", "submitting")]  # both may flash by
        assert shown == [
            "pending",
            "queued",
            "running",
            "completed",
        ], seen
        assert page.evaluate("() => window.gqSamePage === true")
        assert console.record(key, gid)["input"] == {
            **SEED_EXAMPLE,
            "sync_mode": False,
            "enhance_prompt": False,
        }

        # The image, full size, from genqueue's own media store once copied.
        expect(page.locator("#media")).to_have_text("stored", timeout=30_000)
        own = re.compile(rf"^{re.escape(console.url)}/media/{gid}/0/")
        expect(page.locator("#images img").first).to_have_attribute("src", own)
        assert natural_width(page, "#images img") == 1024  # 1:1 from the simulator
        expect(page.locator("#upstream-id")).not_to_have_text("—")
        expect(page.locator("#chart svg")).to_be_visible()
        timeline = page.locator("#timeline li")
        expect(timeline.filter(has_text="→ pending")).to_have_count(1)
        expect(timeline.filter(has_text="→ completed")).to_have_count(1)
        expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
        page.screenshot(path=screenshot_path("generation"), full_page=True)

        # The list: the new generation with its status, prompt and thumbnail, live.
        page.get_by_role("link", name="Generations").click()
        row = page.locator(f'#generations tr[data-id="{gid}"]')
        expect(row).to_have_attribute("data-status", "completed")
        expect(row.get_by_role("link")).to_contain_text("Extreme close-up of a single tiger eye")
        assert natural_width(page, f'#generations tr[data-id="{gid}"] img') > 0
        page.screenshot(path=screenshot_path("generations"), full_page=True)
    finally:
        with sessions.begin() as session:
            set_tenant(session, tenant, {"max_in_flight": None})


def test_cancel_a_queued_job_from_its_page(
    page: Page, console: Console, sim: SimAdmin, sessions: sessionmaker[Session]
) -> None:
    sim.configure(capacity=1, run_time=60.0)
    key = new_key(sessions)
    holder = console.create(key, "holds upstream's one slot")
    console.wait_status(key, holder, "running")
    target = console.create(key, "waits in upstream's queue, then is cancelled")
    console.wait_status(key, target, "queued")
    try:
        sign_in(page, key)
        page.goto(f"/console/generations/{target}")
        expect(page.locator("#status")).to_have_text("queued")
        expect(page.locator("#position")).to_have_text("position 0 in upstream's queue")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#cancel-answer")).to_have_text(
            "Cancel requested: upstream was asked; it may still complete."
        )
        expect(page.locator("#status")).to_have_text("cancelled", timeout=30_000)
        expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
        assert console.record(key, target)["status"] == "cancelled"
        assert sim.request(console.record(key, target)["upstream_request_id"])["calls"]["cancel"]
    finally:
        console.http.post(f"/v1/generations/{holder}/cancel", headers=auth(key))
    console.wait_status(key, holder, "cancelled", "completed")


def test_a_422_is_shown_next_to_the_field_it_names(
    page: Page, console: Console, sessions: sessionmaker[Session]
) -> None:
    tenant = f"console-{uuid.uuid4().hex[:8]}"
    key = new_key(sessions, tenant=tenant)
    sign_in(page, key)
    page.goto("/console/new")
    expect(page.locator("#submit-form")).to_have_attribute("data-ready", "true")
    assert unlabelled_controls(page) == []
    page.get_by_label("Prompt", exact=True).fill("   ")  # the browser cannot tell: the API can
    page.get_by_label("Guidance scale", exact=True).fill("25")
    page.get_by_role("button", name="Submit").click()
    prompt_error = page.locator("#field-prompt-error")
    expect(prompt_error).to_have_text(
        "String should have at least one character that is not white space"
    )
    expect(page.locator("#field-guidance_scale-error")).to_have_text(
        "Input should be less than or equal to 20"
    )
    expect(page.get_by_label("Prompt", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()
    expect(page.locator("#field-num_images-error")).to_be_hidden()
    assert page.url.endswith("/console/new")
    assert stored(sessions, tenant) == 0  # nothing was stored


def test_another_tenants_generations_are_never_shown(
    page: Page, console: Console, sessions: sessionmaker[Session]
) -> None:
    key, other = new_key(sessions), new_key(sessions)
    word = uuid.uuid4().hex[:8]
    mine = console.create(key, f"mine {word}")
    theirs = console.create(other, f"theirs {word}")

    page.goto("/console/sign-in")
    page.get_by_label("API key").fill("gq_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#api-key-error")).to_have_text(
        "This key was refused (unknown or revoked)."
    )
    sign_in(page, key)
    expect(page.locator(f'#generations tr[data-id="{mine}"]')).to_have_count(1)
    assert unlabelled_controls(page) == []
    page.keyboard.press("Tab")  # the first stop skips to the content, for keyboards
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    expect(page.locator(f'#generations tr[data-id="{theirs}"]')).to_have_count(0)
    page.get_by_label("Prompt contains").fill(word)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#generations tbody tr")).to_have_count(1)
    expect(page.locator("#generations tbody tr")).to_have_attribute("data-id", mine)

    page.get_by_role("link", name="Overview").click()
    counts = page.locator("#counts li")
    expect(counts).to_have_count(7)  # one per status, this tenant's: 1 in all
    assert sum(int(t.split()[-1]) for t in counts.all_inner_texts()) == 1
    expect(page.get_by_role("link", name="Flower")).to_have_attribute(
        "href", "http://127.0.0.1:5555"
    )
    page.screenshot(path=screenshot_path("overview"), full_page=True)

    page.goto(f"/console/generations/{theirs}")
    expect(page.locator("#status")).to_have_text("not found")
    expect(page.locator("#notice")).to_have_text("No such generation (or it is not yours).")
    expect(page.locator("#input")).to_have_text("")


def test_a_failed_generation_shows_the_upstreams_error(
    page: Page, console: Console, sim: SimAdmin, sessions: sessionmaker[Session]
) -> None:
    key = new_key(sessions)
    marker = f"refused upstream {uuid.uuid4().hex[:6]}"
    sim.add_fault(
        op="submit",
        kind="http",
        status_code=422,
        body={"detail": [{"loc": ["body", "prompt"], "msg": "the simulator says no"}]},
        match_prompt=marker,
    )
    gid = console.create(key, marker)
    console.wait_status(key, gid, "failed")
    sign_in(page, key)
    page.goto(f"/console/generations/{gid}")
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#error-message")).to_contain_text("HTTP 422")
    expect(page.locator("#error-body")).to_contain_text("the simulator says no")
    expect(page.locator("#images-section")).to_be_hidden()
