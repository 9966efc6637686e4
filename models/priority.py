"""A job's priority: it orders a tenant's own pending jobs, and is passed upstream."""

from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"
    """Before the tenant's normal and low jobs (upstream: ``normal``, fal knows no higher)."""
    NORMAL = "normal"
    """The default."""
    LOW = "low"
    """After the tenant's other jobs; upstream ``low`` too."""

    @property
    def rank(self) -> int:
        """The stored value: lower goes first."""
        return _RANKS[self]

    @classmethod
    def of_rank(cls, rank: int) -> "Priority":
        return _BY_RANK[rank]

    @property
    def upstream(self) -> str:
        """fal's ``X-Fal-Queue-Priority``: ``normal`` or ``low``."""
        return "low" if self is Priority.LOW else "normal"


_RANKS = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}
_BY_RANK = {rank: priority for priority, rank in _RANKS.items()}
