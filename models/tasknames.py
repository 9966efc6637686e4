"""The contract between publishers (the API, the dispatcher) and the worker: names only."""

QUEUE = "genqueue"
SUBMIT_MANY = "generation.submit_many"
"""Args: ``[list of generation ids]``. What the API and the dispatcher publish: one message per
group of rows committed together, so a burst costs one task, one claim and one write-back."""
POLL_BATCH = "generation.poll_batch"
CANCEL = "generation.cancel"
DISPATCH = "generation.dispatch"
RECONCILE = "generation.reconcile"
WEBHOOKS = "generation.deliver_webhooks"
