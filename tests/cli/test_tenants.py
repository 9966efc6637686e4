"""`genqueue tenants set|list` on the embedded SQLite database, in-process."""

import pytest

from tests.cli.conftest import Cli


def test_set_then_list_shows_the_settings_and_the_counts(cli: Cli) -> None:
    assert cli("keys", "create", "alice", "--tenant", "acme").code == 0
    assert cli("keys", "create", "bob").code == 0
    run = cli(
        "tenants", "set", "acme", "--max-in-flight", "2", "--rate-limit", "5", "--burst", "10",
        "--weight", "3", "--monthly-budget", "12.5",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert run.out.strip() == (
        "tenant acme: max_in_flight=2, rate_limit=5, burst=10, weight=3, monthly_budget=12.5"
    )
    listed = cli("tenants", "list")
    assert listed.code == 0, listed.err
    header, *rows = [line.split("\t") for line in listed.out.strip().splitlines()]
    assert header == ["tenant", "max", "rate/s", "burst", "weight", "budget", "live", "pending"]
    assert rows == [
        ["acme", "2", "5", "10", "3", "12.5", "0", "0"],
        ["bob", "-", "-", "-", "1", "-", "0", "0"],
    ]
    cleared = cli("tenants", "set", "acme", "--max-in-flight", "none", "--monthly-budget", "none")
    assert cleared.code == 0, cleared.err
    assert cli("tenants", "list").out.splitlines()[1].split("\t")[1:6] == ["-", "5", "10", "3", "-"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-in-flight", "two"], "--max-in-flight must be a whole number or 'none'"),
        (["--max-in-flight", "0"], "max_in_flight: must be a whole number of at least 1"),
        (["--weight", "none"], "weight: cannot be cleared"),
        (["--weight", "-1"], "weight: must be a number above 0"),
        (["--rate-limit", "nan"], "rate_limit: must be a number above 0"),
        (["--monthly-budget", "-5"], "monthly_budget: must be a number of USD of at least 0"),
        ([], "nothing to change"),
    ],
)
def test_bad_settings_are_refused_in_one_line_and_change_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    assert cli("keys", "create", "alice", "--tenant", "acme").code == 0
    run = cli("tenants", "set", "acme", *args)
    assert run.code == 2
    assert message in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert cli("tenants", "list").out.splitlines()[1].split("\t")[1:6] == ["-", "-", "-", "1", "-"]


def test_an_unknown_tenant_is_named(cli: Cli) -> None:
    assert cli("keys", "create", "alice").code == 0
    run = cli("tenants", "set", "nobody", "--weight", "2")
    assert run.code != 0
    assert "no tenant named 'nobody'" in run.err
