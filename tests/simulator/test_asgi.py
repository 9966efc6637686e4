"""``create_app`` used in-process, without a server (e.g. over httpx.ASGITransport)."""

import asyncio

import httpx

from simulator import ManualClock, Simulator, SimulatorConfig, create_app
from tests.simulator.helpers import MODEL


def test_the_app_runs_in_process_over_asgi_transport() -> None:
    clock = ManualClock()
    sim = Simulator(SimulatorConfig(run_time=1.0), clock=clock)

    async def scenario() -> tuple[int, int, str]:
        transport = httpx.ASGITransport(app=create_app(sim))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
            handle = (await http.post(f"/{MODEL}", json={"prompt": "in process"})).json()
            clock.advance(1.0)
            status = await http.get(handle["status_url"])
            result = await http.get(handle["response_url"])
            image = await http.get(result.json()["images"][0]["url"])
            return status.status_code, result.status_code, image.headers["content-type"]

    assert asyncio.run(scenario()) == (200, 200, "image/jpeg")
    assert sim.submits()[0]["endpoint"] == MODEL
