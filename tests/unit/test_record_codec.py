"""A submission record's stored form: packed history and valid version, plain fields to filter on."""

from __future__ import annotations

import copy
import zlib

import orjson

from services.aggregate.record_codec import pack, unpack

RECORD = {
    "_id": "7f9c", "type": "seizure", "status": "validated", "version": 2, "errors": [], "country": "TJK",
    "received_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-02T09:00:00Z", "submitted_by": "k1",
    "history": [{"seq": 4, "hash": "ab" * 32, "status": "rejected", "errors": [{"loc": ["data", "unit"]}],
                 "fields": {"unit": "0c1d"}, "version": 1},
                {"seq": 9, "hash": "cd" * 32, "status": "validated", "errors": [], "fields": {}, "version": 2}],
    "valid": {"seq": 9, "hash": "cd" * 32, "data": {"place": "Хорог", "quantity": "12.5", "notes": None},
              "contributions": [{"view": "seizures", "key": "TJK:2026:heroin:kg",
                                 "figures": {"quantity_micro": 2**62, "submissions": 1}}]},
}


def test_a_record_reads_back_as_it_was_written() -> None:
    original = copy.deepcopy(RECORD)
    assert unpack(pack(RECORD)) == original
    assert original == RECORD  # packing leaves the caller's record alone


def test_the_fields_reads_filter_on_stay_plain_and_the_rest_is_one_compressed_value() -> None:
    stored = pack(RECORD)
    assert {k: v for k, v in stored.items() if k != "packed"} == {
        k: v for k, v in RECORD.items() if k not in ("history", "valid")}
    assert orjson.loads(zlib.decompress(stored["packed"])) == {"history": RECORD["history"], "valid": RECORD["valid"]}


def test_a_record_stored_before_packing_reads_as_it_is() -> None:
    assert unpack(copy.deepcopy(RECORD)) == RECORD


def test_a_record_without_a_valid_version_keeps_none() -> None:
    received = {k: v for k, v in RECORD.items() if k != "valid"}
    assert unpack(pack(received)) == received
