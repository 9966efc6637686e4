"""Lifecycle functions: the body of every task, callable directly from tests."""

from worker.lifecycle.cancel import cancel_generation
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import submit_generations

__all__ = [
    "cancel_generation",
    "dispatch_due",
    "poll_generations",
    "reconcile",
    "submit_generations",
]
