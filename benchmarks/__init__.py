"""genqueue's benchmarks: B1 throughput, B2 many slow jobs in flight, B3 API latency.

Each runs against the real stack (PostgreSQL, Redis, API, worker, beat, simulator) over loopback,
beside a baseline measured in the same run. ``python -m benchmarks --help``.
"""
