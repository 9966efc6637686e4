"""Helpers shared by the simulator tests."""

from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from simulator import ManualClock, Simulator, SimulatorServer

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
SEED_PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    "Sharp focus on eye texture and color. Natural lighting to capture authentic eye shine and "
    'depth. The word "FLUX" is painted over it in big, white brush strokes with visible texture.'
)
#: The seed document's example request body, verbatim.
SEED_BODY: dict[str, Any] = {
    "prompt": SEED_PROMPT,
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "aspect_ratio": "1:1",
}
T = TypeVar("T")


@dataclass
class SimClient:
    """An httpx client on a simulator, plus the clock that drives it."""

    http: httpx.Client
    server: SimulatorServer
    clock: ManualClock

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def info(self, request_id: str) -> dict[str, Any]:
        """The simulator's record of a request it knows (asserts it does)."""
        info = self.sim.request_info(request_id)
        assert info is not None, f"unknown request {request_id}"
        return info

    def submit(
        self, prompt: str = "a lighthouse", *, endpoint: str = MODEL, **fields: Any
    ) -> dict[str, Any]:
        """Submit and return the handle (asserts the 200)."""
        response = self.http.post(f"/{endpoint}", json={"prompt": prompt, **fields})
        assert response.status_code == 200, response.text
        handle: dict[str, Any] = response.json()
        return handle

    def status(self, handle: dict[str, Any], **params: Any) -> httpx.Response:
        return self.http.get(handle["status_url"], params=params)

    def result(self, handle: dict[str, Any]) -> httpx.Response:
        return self.http.get(handle["response_url"])

    def cancel(self, handle: dict[str, Any]) -> httpx.Response:
        return self.http.put(handle["cancel_url"])

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
