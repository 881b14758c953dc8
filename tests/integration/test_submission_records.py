"""What ingest reads of aggregate's records to authorise a withdrawal: the live generation's, on the real store."""

from __future__ import annotations

import uuid

from services.aggregate.generation import GenerationMeta
from services.aggregate.mongo_repository import MongoRepository
from shared.records import InMemorySubmissionRecords, MongoSubmissionRecords, Submitted
from shared.store import connect
from tests.conftest import Infra


def record(sid: str, owner: str) -> dict[str, object]:
    return {"_id": sid, "type": "price", "status": "validated", "submitted_by": owner, "history": [], "valid": None}


async def test_the_owner_is_read_from_the_live_generation_and_an_unrecorded_id_is_none(infra: Infra) -> None:
    client = connect(infra.mongodb_url, "tests")
    database = f"records_{uuid.uuid4().hex[:10]}"
    try:
        records = MongoSubmissionRecords(client, database)
        await MongoRepository(client, database, 0).save_submissions([record("s1", "officer-a")])
        await MongoRepository(client, database, 3).save_submissions([record("s1", "officer-b")])

        assert await records.find("s1") == Submitted("price", "officer-a")
        assert await records.find("s2") is None
        await GenerationMeta(client, database).make_live(3)
        assert await records.find("s1") == Submitted("price", "officer-b")

        memory = InMemorySubmissionRecords({"s1": Submitted("price", "officer-b")})
        assert (await memory.find("s1"), await memory.find("s2")) == (await records.find("s1"), None)
    finally:
        await client.drop_database(database)
        await client.close()
