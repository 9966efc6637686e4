"""Result images: real pictures, right size and format, served publicly and cached."""

import io
from typing import Any

import pytest
from PIL import Image

from simulator import Simulator, SimulatorConfig
from simulator.calls import Call
from simulator.validation import IMAGE_SIZES
from tests.simulator.helpers import MODEL, SimClient


def _extrema(image: Image.Image) -> tuple[float, float]:
    """(min, max) of a one-band image."""
    low, high = image.getextrema()
    assert isinstance(low, int | float)
    assert isinstance(high, int | float)
    return low, high


def _result(api: SimClient, prompt: str = "a lighthouse", **fields: Any) -> dict[str, Any]:
    handle = api.submit(prompt, **fields)
    api.advance(10.0)
    response = api.result(handle)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("ratio", "size"), sorted(IMAGE_SIZES.items()))
def test_each_aspect_ratio_has_its_size(api: SimClient, ratio: str, size: tuple[int, int]) -> None:
    body = _result(api, aspect_ratio=ratio)
    [meta] = body["images"]
    assert (meta["width"], meta["height"]) == size
    response = api.http.get(meta["url"])
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("JPEG", size)


def test_png_output_and_several_images(api: SimClient) -> None:
    body = _result(api, output_format="png", num_images=3, aspect_ratio="16:9")
    images = body["images"]
    assert len(images) == 3
    contents = []
    for meta in images:
        assert meta["content_type"] == "image/png"
        response = api.http.get(meta["url"])
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert (image.format, image.size) == ("PNG", (1392, 752))
        contents.append(response.content)
    assert len(set(contents)) == 3  # different pictures


def test_images_are_stable_between_fetches(api: SimClient) -> None:
    body = _result(api, seed=5)
    url = body["images"][0]["url"]
    assert api.http.get(url).content == api.http.get(url).content


def test_images_are_pictures_not_blank(api: SimClient) -> None:
    body = _result(api, seed=9)
    data = api.http.get(body["images"][0]["url"]).content
    image = Image.open(io.BytesIO(data)).convert("L")
    low, high = _extrema(image)
    assert high - low > 100
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50


def test_nsfw_prompt_gives_a_black_image_and_the_flag(api: SimClient) -> None:
    body = _result(api, "something [nsfw] here", num_images=2)
    assert body["has_nsfw_concepts"] == [True, True]
    data = api.http.get(body["images"][0]["url"]).content
    image = Image.open(io.BytesIO(data)).convert("L")
    assert _extrema(image)[1] < 10


def test_unknown_or_wrong_files_are_404(api: SimClient) -> None:
    body = _result(api)
    url = body["images"][0]["url"]
    assert api.http.get(url.replace("0.jpeg", "0.png")).status_code == 404
    assert api.http.get(url.replace("0.jpeg", "1.jpeg")).status_code == 404
    assert api.http.get("/files/nope/0.jpeg").status_code == 404
    assert api.http.post(url).status_code == 405
    head = api.http.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 1000


def test_files_of_unfinished_or_failed_jobs_are_404(api: SimClient) -> None:
    handle = api.submit()
    url = f"/files/{handle['request_id']}/0.jpeg"
    assert api.http.get(url).status_code == 404
    api.cancel(handle)
    assert api.http.get(url).status_code == 404


def _first_picture(sim: Simulator, body: bytes = b'{"prompt": "a tiger eye"}') -> tuple[int, bytes]:
    """The seed and the bytes of the first job's picture on a simulator just started."""
    app = "fal-ai/flux-pro"
    call = Call(op="submit", app=app, base_url="http://sim", endpoint=MODEL, body=body)
    request_id = sim.handle(call).body["request_id"]
    sim.advance()
    reply = sim.handle(Call(op="result", app=app, base_url="http://sim", request_id=request_id))
    assert reply.status_code == 200, reply.body
    image = sim.image(request_id, "0.jpeg")
    assert image is not None
    return reply.body["seed"], image[0]


def test_every_start_draws_other_pictures_unless_the_request_gives_a_seed() -> None:
    """`genqueue up` starts its simulator afresh each time: the first job of every start must
    not get the same seed (and so the same picture) as the one before."""
    starts = [_first_picture(Simulator(SimulatorConfig(run_time=0.0))) for _ in range(3)]
    assert len({seed for seed, _ in starts}) == 3, starts
    assert len({picture for _, picture in starts}) == 3

    given = b'{"prompt": "a tiger eye", "seed": 1234}'
    seeded = [_first_picture(Simulator(SimulatorConfig(run_time=0.0)), given) for _ in range(2)]
    assert seeded[0] == seeded[1]  # as fal does with a seed
    assert seeded[0][0] == 1234

    repeat = [_first_picture(Simulator(SimulatorConfig(run_time=0.0, seed=7))) for _ in range(2)]
    assert repeat[0] == repeat[1]  # `--seed N` repeats a run
