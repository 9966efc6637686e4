"""Fault injection: the rule model and the ordered book of active rules."""

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultOp = Literal["submit", "status", "result", "cancel", "file", "any"]
"""``file``: a GET of a finished job's image (``/files/…``); only rules of op ``file`` apply
there, so an image can be told to expire (404) or to fail for a while (5xx, hang, reset)."""
FaultKind = Literal[
    "http",
    "retry_after",
    "ingress_502",
    "hang",
    "reset",
    "malformed",
    "model_error",
    "accept_then_reset",
    "accept_then_hang",
    "expire_result",
    "duplicate_webhook",
]
Op = Literal["submit", "status", "result", "cancel"]

#: Kinds that answer (or drop) the HTTP call itself, before any other processing.
CALL_KINDS = frozenset({"http", "retry_after", "ingress_502", "hang", "reset", "malformed"})
#: Kinds applied to a submit once it is accepted (they change the job or the connection).
ACCEPT_KINDS = frozenset(
    {"model_error", "accept_then_reset", "accept_then_hang", "expire_result", "duplicate_webhook"}
)
_SUBMIT_ONLY = frozenset(
    {"model_error", "accept_then_reset", "accept_then_hang", "duplicate_webhook"}
)
#: Hold time of ``hang`` / ``accept_then_hang`` when the rule gives no ``delay``.
DEFAULT_HANG_SECONDS = 3600.0


class FaultRule(BaseModel):
    """One injected misbehaviour; JSON form is the body of ``POST /_sim/faults``.

    Rules are tried in the order they were added; the first that matches a call applies.
    ``times`` None applies forever; otherwise the rule is dropped after that many uses.
    ``match_prompt`` restricts the rule to jobs whose prompt contains it (for status, result
    and cancel: the prompt of the job the call names). ``delay`` holds the answer that many
    seconds (``hang`` kinds default to an hour).
    """

    model_config = ConfigDict(extra="forbid")

    op: FaultOp = "any"
    kind: FaultKind = "http"
    status_code: int | None = Field(default=None, ge=100, le=599)
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry_after: float = Field(default=1.0, ge=0)
    error_type: str | None = None
    times: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    match_prompt: str | None = None
    delay: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _op_fits_kind(self) -> "FaultRule":
        if self.kind in _SUBMIT_ONLY and self.op not in ("submit", "any"):
            raise ValueError(f"kind {self.kind!r} applies to submits only (op 'submit' or 'any')")
        if self.kind == "expire_result" and self.op not in ("submit", "result", "any"):
            raise ValueError("kind 'expire_result' needs op 'submit', 'result' or 'any'")
        return self

    @property
    def hold_seconds(self) -> float:
        """How long to hold the answer (0 = answer at once)."""
        if self.delay is not None:
            return self.delay
        return DEFAULT_HANG_SECONDS if self.kind in ("hang", "accept_then_hang") else 0.0


class FaultBook:
    """Active rules in insertion order. Not thread-safe: the simulator's lock guards it."""

    def __init__(self, rng: random.Random) -> None:
        self._rules: list[FaultRule] = []
        self._left: list[int | None] = []
        self._rng = rng

    def add(self, rule: FaultRule) -> None:
        self._rules.append(rule)
        self._left.append(rule.times)

    def clear(self) -> None:
        self._rules.clear()
        self._left.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Active rules as JSON, each with its remaining uses."""
        return [
            {**rule.model_dump(mode="json"), "remaining": left}
            for rule, left in zip(self._rules, self._left, strict=True)
        ]

    def take(
        self,
        op: str,
        kinds: frozenset[str],
        prompt: str | None,
        *,
        ops: frozenset[str] | None = None,
    ) -> FaultRule | None:
        """Use up and return the first rule of one of ``kinds`` that matches this call.

        ``ops`` overrides which rule ops match (default: ``op`` itself and ``"any"``).
        """
        wanted = ops if ops is not None else frozenset({op, "any"})
        for index, rule in enumerate(self._rules):
            if rule.kind not in kinds or rule.op not in wanted:
                continue
            if rule.match_prompt is not None and (
                prompt is None or rule.match_prompt not in prompt
            ):
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            left = self._left[index]
            if left is not None:
                if left <= 1:
                    del self._rules[index], self._left[index]
                else:
                    self._left[index] = left - 1
            return rule
        return None
