"""Real pictures for simulated results: a seeded gradient with shapes and the prompt drawn on."""

import io
import random
import textwrap
import threading
from collections import OrderedDict
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from simulator.validation import GenParams

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def _font(size: int) -> FontType:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def render_image(
    *,
    prompt: str,
    seed: int,
    index: int,
    size: tuple[int, int],
    fmt: str,
    nsfw: bool = False,
) -> bytes:
    """Encode one picture as ``fmt`` ("jpeg" or "png"); NSFW pictures are black."""
    width, height = size
    if nsfw:
        image = Image.new("RGB", size, (0, 0, 0))
    else:
        image = _picture(prompt, seed, index, width, height)
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG", compress_level=1)
    else:
        image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _picture(prompt: str, seed: int, index: int, width: int, height: int) -> Image.Image:
    rng = random.Random(f"{seed}:{index}")
    top = tuple(rng.randrange(40, 200) for _ in range(3))
    bottom = tuple(rng.randrange(40, 200) for _ in range(3))
    ramp = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), ramp
    )
    draw = ImageDraw.Draw(image)
    unit = min(width, height)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(unit // 16, unit // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    font_size = max(16, unit // 24)
    lines = textwrap.wrap(prompt or "(no prompt)", width=max(10, width // (font_size * 6 // 10)))
    lines = lines[: max(1, (height // 2) // (font_size + 6))]
    font = _font(font_size)
    y = height - (len(lines) + 1) * (font_size + 6)
    draw.rectangle((0, y - font_size // 2, width, height), fill=(0, 0, 0))
    for line in lines:
        draw.text((font_size, y), line, fill=(255, 255, 255), font=font)
        y += font_size + 6
    stamp = f"genqueue simulator - seed {seed} - image {index}"
    draw.text((font_size, font_size), stamp, fill=(255, 255, 255), font=font)
    return image


class ImageCache:
    """A small thread-safe LRU of encoded images (rendering again is always possible)."""

    def __init__(self, max_items: int = 64) -> None:
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        with self._lock:
            self._items[key] = data
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def image_file(
    cache: ImageCache, request_id: str, name: str, *, params: GenParams, seed: int
) -> tuple[bytes, str] | None:
    """Bytes and content type of image ``name`` (``{index}.{ext}``) of a job; None if none."""
    stem, _, ext = name.partition(".")
    if ext != params.output_format or not stem.isdigit() or int(stem) >= params.num_images:
        return None
    key = (request_id, int(stem))
    data = cache.get(key)
    if data is None:
        data = render_image(
            prompt=params.prompt,
            seed=seed,
            index=int(stem),
            size=params.size,
            fmt=params.output_format,
            nsfw=params.nsfw,
        )
        cache.put(key, data)
    return data, f"image/{params.output_format}"
