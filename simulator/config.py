"""Simulator configuration: one frozen value, replaced as a whole on every change."""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

ValidateMode = Literal["submit", "result", "off"]

#: Fields ``Simulator.configure`` / ``POST /_sim/config`` may change at runtime.
RUNTIME_FIELDS = frozenset(
    {
        "run_time",
        "run_time_jitter",
        "capacity",
        "result_ttl",
        "honor_cancel",
        "validate",
        "auth",
        "public_url",
        "stream_interval",
        "stream_ping_interval",
        "webhook_drop",
        "webhook_duplicate",
        "webhook_delay",
        "webhook_forge",
        "webhook_retry_scale",
        "jwks_down",
    }
)
WebhookForgery = Literal["bad_signature", "wrong_key", "stale_timestamp", "other_payload"]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """How the simulated fal queue behaves.

    ``capacity`` None or 0 means unlimited concurrent IN_PROGRESS jobs. ``auth`` None accepts any
    (or no) Authorization header; otherwise the header must equal it exactly. ``public_url`` is
    the base of returned URLs (default: the request's scheme and Host).
    """

    run_time: float = 2.0
    run_time_jitter: float = 0.0
    capacity: int | None = 2
    result_ttl: float = 3600.0
    honor_cancel: bool = True
    validate: ValidateMode = "submit"
    auth: str | None = None
    public_url: str | None = None
    #: Seeds the picks of jobs that give no ``seed`` (and fault probabilities, run-time jitter):
    #: None draws from the OS, so every start makes other pictures; an int repeats a run.
    seed: int | None = None
    #: Real seconds between state checks of an SSE status stream.
    stream_interval: float = 0.1
    #: Real seconds between ``: ping`` keepalives of an SSE status stream.
    stream_ping_interval: float = 5.0
    #: Share (0..1) of webhooks never sent, on no try.
    webhook_drop: float = 0.0
    #: Share (0..1) of webhooks sent twice.
    webhook_duplicate: float = 0.0
    #: Each webhook copy waits a random 0..this many seconds (so they arrive out of order).
    webhook_delay: float = 0.0
    #: Before each genuine webhook, one forged copy of each kind listed.
    webhook_forge: tuple[WebhookForgery, ...] = ()
    #: Multiplies fal's retry gaps (10 tries over about 2 h); 0.001 makes them milliseconds.
    webhook_retry_scale: float = 1.0
    #: ``/.well-known/jwks.json`` answers 503 (the key server is down).
    jwks_down: bool = False

    def __post_init__(self) -> None:
        _non_negative("run_time", self.run_time)
        _non_negative("run_time_jitter", self.run_time_jitter)
        _non_negative("result_ttl", self.result_ttl)
        _positive("stream_interval", self.stream_interval)
        _positive("stream_ping_interval", self.stream_ping_interval)
        self._check_webhook_knobs()
        if self.capacity is not None and (
            isinstance(self.capacity, bool) or not isinstance(self.capacity, int)
        ):
            raise ValueError("capacity must be an integer or None")
        if self.capacity is not None and self.capacity < 0:
            raise ValueError("capacity must be >= 0 (0 or None = unlimited)")
        if self.validate not in get_args(ValidateMode):
            raise ValueError(f"validate must be one of {get_args(ValidateMode)}")
        if not isinstance(self.honor_cancel, bool):
            raise ValueError("honor_cancel must be a boolean")
        if self.auth is not None and not isinstance(self.auth, str):
            raise ValueError("auth must be a string or None")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError("seed must be an integer or None")
        if self.public_url is not None and not isinstance(self.public_url, str):
            raise ValueError("public_url must be a string or None")

    def _check_webhook_knobs(self) -> None:
        _non_negative("webhook_delay", self.webhook_delay)
        _non_negative("webhook_retry_scale", self.webhook_retry_scale)
        for name in ("webhook_drop", "webhook_duplicate"):
            _non_negative(name, getattr(self, name))
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be a share between 0 and 1")
        forge = self.webhook_forge
        if isinstance(forge, str) or not isinstance(forge, list | tuple):
            raise ValueError("webhook_forge must be a list of forgery kinds")
        kinds = get_args(WebhookForgery)
        if any(kind not in kinds for kind in forge):
            raise ValueError(f"webhook_forge kinds are {', '.join(kinds)}")
        object.__setattr__(self, "webhook_forge", tuple(forge))
        if not isinstance(self.jwks_down, bool):
            raise ValueError("jwks_down must be a boolean")

    @property
    def unlimited(self) -> bool:
        return not self.capacity

    def replace(self, **fields: Any) -> "SimulatorConfig":
        """A copy with ``fields`` changed; only :data:`RUNTIME_FIELDS` may change."""
        unknown = set(fields) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"cannot configure: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **fields)

    def public_dict(self) -> dict[str, Any]:
        """The configuration as JSON, with the expected auth value redacted."""
        data = dataclasses.asdict(self)
        data["auth"] = None if self.auth is None else "<set>"
        return data


def _non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    if value < 0:
        raise ValueError(f"{name} must be >= 0")


def _positive(name: str, value: float) -> None:
    _non_negative(name, value)
    if value == 0:
        raise ValueError(f"{name} must be > 0")
