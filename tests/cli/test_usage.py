"""`genqueue usage`: over the API for the key's tenant, or from the database with --tenant."""

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from genqueue.database import open_database
from models.generations import NewGeneration, insert_generations
from models.settings import Settings
from models.tables import Tenant
from tests.cli.conftest import Cli
from tests.cli.stub_api import StubApi

MODEL = "fal-ai/flux-pro/kontext/text-to-image"


def test_usage_over_the_api(cli: Cli, api: StubApi) -> None:
    api.on(
        "GET",
        "/v1/usage",
        (
            200,
            {
                "tenant": "acme",
                "lines": [
                    {"model": MODEL, "status": "completed", "count": 3,
                     "estimated_cost": 0.12, "final_cost": 0.08},
                    {"model": MODEL, "status": "pending", "count": 1,
                     "estimated_cost": 0.04, "final_cost": 0.0},
                ],
            },
        ),
    )  # fmt: skip
    run = cli("usage", "--since", "2026-11-01")
    assert run.code == 0, run.err
    rows = [line.split("\t") for line in run.out.strip().splitlines()]
    assert rows == [
        ["model", "status", "count", "estimated USD", "final USD"],
        [MODEL, "completed", "3", "0.1200", "0.0800"],
        [MODEL, "pending", "1", "0.0400", "0.0000"],
        ["total", "-", "4", "0.1600", "0.0800"],
    ]
    [request] = api.requests
    assert request["path"] == "/v1/usage?since=2026-11-01T00%3A00%3A00%2B00%3A00"


def test_usage_of_a_tenant_from_the_database(cli: Cli, tmp_path: Path) -> None:
    assert cli("keys", "create", "alice", "--tenant", "acme").code == 0
    settings = Settings(data_dir=tmp_path / "data")
    with open_database(settings) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == "acme"))
        assert tenant_id is not None
        insert_generations(
            session,
            [
                NewGeneration(
                    tenant_id, MODEL, {"prompt": "p"}, unit_price=0.04, estimated_cost=0.08
                )
            ],
            now=datetime.now(UTC),
            deadline_seconds=60,
            submit_grace_seconds=1,
        )
    run = cli("usage", "--tenant", "acme")
    assert run.code == 0, run.err
    assert run.out.strip().splitlines()[1].split("\t") == [
        MODEL,
        "pending",
        "1",
        "0.0800",
        "0.0000",
    ]
    unknown = cli("usage", "--tenant", "nobody")
    assert unknown.code != 0
    assert "no tenant named 'nobody'" in unknown.err
    bad = cli("usage", "--tenant", "acme", "--since", "yesterday")
    assert bad.code == 2
    assert "--since must be an ISO date" in bad.err
