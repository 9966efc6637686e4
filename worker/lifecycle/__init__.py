"""Lifecycle functions: the body of every task, callable directly from tests.

One module a task: ``submit_batch`` (``generation.submit_many``), ``poll``
(``generation.poll_batch``), ``cancel``, ``dispatch``, ``reconcile``, ``webhooks``. What a
submit's or a poll's answer becomes is decided in ``submit_outcome`` and ``poll_outcome``.
"""
