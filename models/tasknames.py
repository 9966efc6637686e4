"""The contract between publishers (the API, the dispatcher) and the worker: names only."""

QUEUE = "genqueue"
SUBMIT = "generation.submit"
POLL_BATCH = "generation.poll_batch"
CANCEL = "generation.cancel"
DISPATCH = "generation.dispatch"
RECONCILE = "generation.reconcile"
WEBHOOKS = "generation.deliver_webhooks"
