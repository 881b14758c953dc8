"""Shared contracts: content hashes, trace context, topic names."""

from __future__ import annotations

from shared.envelope import content_hash, trace_id_from, traceparent
from shared.topics import Topics


def test_content_hash_ignores_key_order_but_not_values() -> None:
    a = content_hash("seizure", 1, {"country": "AFG", "quantity": 1})
    assert a == content_hash("seizure", 1, {"quantity": 1, "country": "AFG"})
    assert a != content_hash("seizure", 1, {"quantity": 2, "country": "AFG"})
    assert a != content_hash("seizure", 2, {"quantity": 1, "country": "AFG"})


def test_traceparent_round_trips_and_garbage_is_ignored() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from(traceparent(trace)) == trace
    for bad in (None, "", "00-xyz-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", "nonsense"):
        assert trace_id_from(bad) is None


def test_topics_default_to_the_contract_names_and_namespace_isolates() -> None:
    assert Topics().all() == ("dmp.submissions.received.v1", "dmp.submissions.validated.v1",
                              "dmp.submissions.rejected.v1")
    assert Topics.under("t1").received == "t1.dmp.submissions.received.v1"
    assert Topics.under("") == Topics()
