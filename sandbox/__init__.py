"""Machines on this machine, for the tests and the benchmarks alike: hosts made of Linux network
namespaces (``netns``) and servers of a run's own (``servers``: PostgreSQL, Redis, RabbitMQ),
started on the loopback or inside such a host. Imports no test fixture and no genqueue layer
but ``genqueue.net`` and ``genqueue.supervisor``."""
