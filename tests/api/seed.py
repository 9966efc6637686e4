"""The product owner's seed document, parsed: its request and response examples and its three
client snippets (curl, JavaScript fetch, Python http.client)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME = "000_69b9e94883ad22c3.txt"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / NAME
VENDORED = Path(__file__).with_name(f"seed_{NAME}")
SEED_HOST = "api.quickrouter.ai"
SEED_BASE = f"https://{SEED_HOST}"
SEED_KEY = "YOUR_API_KEY"


@dataclass(frozen=True)
class Seed:
    request_example: dict[str, Any]
    response_example: dict[str, Any]
    curl: str
    javascript: str
    python: str


def _json_after_last(marker: str, text: str) -> dict[str, Any]:
    start = text.rindex(marker) + len(marker)
    end = text.rindex("}") + 1
    value: dict[str, Any] = json.loads(text[start:end])
    return value


def load_seed() -> Seed:
    """The shared copy when the shared folder sits beside the repository, else ours."""
    text = (SHARED if SHARED.exists() else VENDORED).read_text(encoding="utf-8")
    request_part, rest = text.split("请求示例代码", 1)
    code, response_part = rest.split("返回响应", 1)
    js_at = code.index("var myHeaders")
    py_at = code.index("import http.client")
    return Seed(
        request_example=_json_after_last("示例\n", request_part),
        response_example=_json_after_last("示例\n", response_part),
        curl=code[:js_at].strip(),
        javascript=code[js_at:py_at].strip(),
        python=code[py_at:].strip(),
    )
