"""genqueue's benchmarks: B1 throughput, B2 many slow jobs in flight, B3 API latency.

Each runs against the real stack (PostgreSQL, Redis, API, worker, beat, simulator) over loopback,
beside a baseline measured in the same run. ``python -m benchmarks --help``. Others run on their
own, e.g. ``python -m benchmarks.d1_distributed`` (D1: B1 and B2 over hosts made of network
namespaces, one worker host beside two, and B1 on RabbitMQ beside Redis).
"""
