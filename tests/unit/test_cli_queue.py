"""The offline queue's states: pending → received → validated | rejected, amendments, and what it keeps."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest

from cli.queue import Item, Queue, Stored
from shared.envelope import ErrorDetail
from tests.factories import seizure_data, training_submission_data


def got(queue: Queue, submission_id: str) -> Stored:
    stored = queue.get(submission_id)
    assert stored is not None, submission_id
    return stored

@pytest.fixture
def queue(tmp_path) -> Iterator[Queue]:
    with Queue.open(tmp_path / "data" / "queue.sqlite3") as q:
        yield q


def item(submission_id: str = "11111111-1111-4111-8111-111111111111", row: int = 2, **overrides) -> Item:
    return Item(submission_id, "seizure", 2, seizure_data(**overrides), "sheet", "/s.csv", row)


def test_the_queue_file_is_private_and_its_namespace_survives_reopening(tmp_path) -> None:
    path = tmp_path / "data" / "queue.sqlite3"
    with Queue.open(path) as first:
        namespace = first.namespace
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with Queue.open(path) as again:
        assert again.namespace == namespace


def test_new_unchanged_and_amended(queue: Queue) -> None:
    assert queue.enqueue([item()]) == {item().id: "new"}
    assert queue.enqueue([item(row=5)]) == {item().id: "unchanged"}
    assert got(queue, item().id).row == 5
    assert queue.enqueue([item(quantity=2)]) == {item().id: "amended"}
    assert queue.counts()["pending"] == 1


def test_received_only_for_the_content_that_was_sent(queue: Queue) -> None:
    queue.enqueue([item()])
    sent = got(queue, item().id)
    queue.enqueue([item(quantity=99)])  # corrected while the batch was in flight
    assert not queue.mark_received(sent.id, sent.content_hash)
    assert got(queue, sent.id).state == "pending"
    current = got(queue, sent.id)
    assert queue.mark_received(current.id, current.content_hash)
    assert got(queue, sent.id).state == "received"
    assert not queue.mark_received(current.id, current.content_hash)  # already received: no double count


def test_unchanged_reimport_of_a_sent_row_does_not_send_it_again(queue: Queue) -> None:
    queue.enqueue([item()])
    stored = got(queue, item().id)
    queue.mark_received(stored.id, stored.content_hash)
    queue.enqueue([item()])
    assert got(queue, item().id).state == "received"
    assert queue.pending(10) == []


def test_verdicts_apply_only_to_the_version_last_sent(queue: Queue) -> None:
    queue.enqueue([item()])
    v1 = got(queue, item().id)
    queue.mark_received(v1.id, v1.content_hash)
    assert queue.apply_verdict(v1.id, "validated", 1, [], 1)
    queue.enqueue([item(quantity=2)])
    v2 = got(queue, item().id)
    assert v2.state == "pending"
    queue.mark_received(v2.id, v2.content_hash)
    assert got(queue, v2.id).sent_versions == 2
    assert not queue.apply_verdict(v2.id, "validated", 1, [], 1)  # aggregate has not seen version 2 yet
    assert not queue.apply_verdict(v2.id, "received", 2, [], 1)
    errors = [ErrorDetail(loc=["data", "quantity"], msg="must be > 0", type="greater_than")]
    assert queue.apply_verdict(v2.id, "rejected", 2, errors, 1)
    stored = got(queue, v2.id)
    assert (stored.state, stored.errors, stored.current_valid_version) == ("rejected", errors, 1)
    assert queue.counts() == {"pending": 0, "received": 0, "invalid": 0, "validated": 0, "rejected": 1}


def test_a_row_changed_and_changed_back_before_a_sync_is_no_new_version(queue: Queue) -> None:
    queue.enqueue([item()])
    stored = got(queue, item().id)
    queue.mark_received(stored.id, stored.content_hash)
    queue.enqueue([item(quantity=5)])  # never sent: ingest will see the first content again and deduplicate it
    queue.enqueue([item()])
    again = got(queue, item().id)
    assert again.state == "pending"
    queue.mark_received(again.id, again.content_hash)
    assert got(queue, item().id).sent_versions == 1


def test_refused_rows_keep_ingests_reasons_and_are_tried_again_when_queued_again(queue: Queue) -> None:
    queue.enqueue([item()])
    stored = got(queue, item().id)
    errors = [ErrorDetail(loc=["body", "data", "country"], msg="this key reports for PAK, not AFG",
                          type="forbidden_country")]
    assert queue.mark_invalid(stored.id, stored.content_hash, errors)
    assert (got(queue, stored.id).state, got(queue, stored.id).errors) == ("invalid", errors)
    assert queue.enqueue([item()]) == {stored.id: "unchanged"}  # e.g. after `dmp login --key` with another key
    assert got(queue, stored.id).state == "pending"
    queue.mark_invalid(stored.id, stored.content_hash, errors)
    queue.enqueue([item(place="Herat")])
    assert (got(queue, stored.id).state, got(queue, stored.id).errors) == ("pending", [])


def test_failed_attempts_are_counted_and_items_stay_pending(queue: Queue) -> None:
    queue.enqueue([item()])
    queue.note_attempt([item().id], "cannot reach ingest")
    stored = got(queue, item().id)
    assert (stored.state, stored.attempts, stored.last_error) == ("pending", 1, "cannot reach ingest")


def test_pending_is_oldest_first_and_pages_by_sequence(queue: Queue) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]
    queue.enqueue([item(i, row=n, place=f"p{n}") for n, i in enumerate(ids)])
    first = queue.pending(2)
    assert [s.id for _, s in first] == ids[:2]
    assert [s.id for _, s in queue.pending(10, after_seq=first[-1][0])] == ids[2:]


def test_a_participants_identity_is_dropped_once_ingest_has_it(queue: Queue) -> None:
    training = Item("22222222-2222-4222-8222-222222222222", "training", 1, training_submission_data(), "sheet",
                    "/t.csv", 2)
    queue.enqueue([training])
    assert got(queue, training.id).data["participant"]["national_id"] == "A1234567"
    queue.mark_received(training.id, training.content_hash)
    kept = got(queue, training.id)
    assert "national_id" not in kept.data["participant"]
    assert "full_name" not in kept.data["participant"]
    assert queue.enqueue([training]) == {training.id: "unchanged"}  # the content hash still recognises it


def test_content_already_queued_under_another_id_is_a_conflict(queue: Queue) -> None:
    queue.enqueue([item("11111111-1111-4111-8111-111111111111", row=2)])
    moved = item("33333333-3333-4333-8333-333333333333", row=3)  # the same content, now under row 3's id
    conflicts = queue.conflicts([moved, item("11111111-1111-4111-8111-111111111111", row=2)])
    assert [(c.item.id, c.other.id, c.other.row) for c in conflicts] == [
        (moved.id, "11111111-1111-4111-8111-111111111111", 2)]
    assert queue.conflicts([item(moved.id, place="Herat")]) == []
