"""`GET /v1/generations?id_prefix=…`: the generations whose id begins with some hex digits (what
`genqueue status 5d7e` looks up), on PostgreSQL and on SQLite (`genqueue up`)."""

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.listing import Filters, list_page, prefix_ids
from models.keys import create_key
from tests.api.support import auth
from tests.support.generations import create_generation

MODEL = "fal-ai/flux-pro/kontext/text-to-image"


def test_a_prefix_finds_the_ids_that_begin_with_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"prefix-{uuid.uuid4().hex[:8]}")
        tenant_id = key.tenant_id
        ids = [
            str(
                create_generation(
                    session,
                    tenant_id=tenant_id,
                    model=MODEL,
                    input={"prompt": f"p{n}"},
                    now=datetime.now(UTC),
                    deadline_seconds=60,
                    submit_grace_seconds=2,
                ).id
            )
            for n in range(24)  # 24 ids, 16 first digits: some share theirs
        ]

    def found(prefix: str) -> set[str]:
        with sessions() as session:
            rows, _ = list_page(
                session, tenant_id, Filters(ids=prefix_ids(prefix)), limit=50, cursor=None
            )
            return {str(row.id) for row in rows}

    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    assert found(shared) == {i for i in ids if i.startswith(shared)}
    one = ids[0]
    assert found(one[:13]) == {one}
    assert found(one[:13].upper()) == {one}
    assert found(one.replace("-", "")) == {one}
    absent = next(
        f"{a}{b}"
        for a in "0123456789abcdef"
        for b in "0123456789abcdef"
        if not any(i.startswith(f"{a}{b}") for i in ids)
    )
    assert found(absent) == set()


def test_the_api_takes_a_prefix_and_refuses_what_is_not_one(client: TestClient, key: str) -> None:
    made = [
        client.post(
            "/v1/generations",
            json={"model": MODEL, "input": {"prompt": f"p{n}"}},
            headers=auth(key),
        ).json()["id"]
        for n in range(2)
    ]
    for gen_id in made:
        page = client.get(
            "/v1/generations", params={"id_prefix": gen_id[:13]}, headers=auth(key)
        ).json()
        assert [item["id"] for item in page["items"]] == [gen_id]
    for bad in ("xyz", "", "0" * 33):
        answer = client.get("/v1/generations", params={"id_prefix": bad}, headers=auth(key))
        assert answer.status_code == 422, bad
        assert answer.json()["detail"][0]["loc"] == ["query", "id_prefix"]


@pytest.mark.parametrize("prefix", ["5d7e", "5d7e0c1a-9a3e"])
def test_prefix_ids_are_the_ends_of_a_range(prefix: str) -> None:
    low, high = prefix_ids(prefix)
    assert str(low).replace("-", "").startswith(prefix.replace("-", ""))
    assert str(high).replace("-", "").rstrip("f").startswith(prefix.replace("-", "").rstrip("f"))
    assert low < high
