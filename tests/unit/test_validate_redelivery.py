"""validate does not decide again what its own committed transactions decided, when the group hands it out again."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from services.validate.settings import ValidateSettings
from services.validate.worker import ValidateWorker


def received(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=tp.topic, partition=tp.partition, offset=offset, timestamp=0, timestamp_type=0,
                          key=b"id", value=b"{}", checksum=None, serialized_key_size=2, serialized_value_size=2,
                          headers=[])


def test_records_below_the_offsets_validate_committed_are_left_out_of_the_batch() -> None:
    worker = ValidateWorker(ValidateSettings())
    again, behind, new = (TopicPartition("received", p) for p in range(3))
    worker.decided_up_to = {again: 12, behind: 5}
    batch = {again: [received(again, o) for o in range(10, 15)], behind: [received(behind, o) for o in range(2, 5)],
             new: [received(new, 0)]}

    kept = worker._undecided(batch)

    assert {tp: [r.offset for r in records] for tp, records in kept.items()} == {again: [12, 13, 14], new: [0]}
