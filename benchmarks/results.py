"""What a benchmark hands back: raw figures, and table rows that set each figure beside its
same-run baseline as a ratio. Targets are reported, never enforced."""

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.stats import ratio


@dataclass(frozen=True)
class Row:
    metric: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None


@dataclass
class BenchResult:
    key: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    """Everything measured, by name (numbers, or small dicts of numbers)."""
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(
        self,
        metric: str,
        value: float,
        unit: str,
        *,
        baseline: str | None = None,
        baseline_value: float | None = None,
        target: str | None = None,
        met: bool | None = None,
    ) -> None:
        """A table row; beside a baseline its ratio is ``value / baseline_value``."""
        share = None if baseline_value is None else ratio(value, baseline_value)
        self.rows.append(Row(metric, value, unit, baseline, baseline_value, share, target, met))

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "params": self.params,
            "figures": self.figures,
            "rows": [asdict(r) for r in self.rows],
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }
