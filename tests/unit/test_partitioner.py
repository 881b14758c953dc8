"""Keys go to the partitions every Kafka client picks for them."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference

from shared.kafka import murmur2, partition_for


def test_murmur2_equals_the_reference_for_every_length() -> None:
    rng = random.Random(7)
    for length in [*range(200), 1000]:
        for _ in range(5):
            key = bytes(rng.getrandbits(8) for _ in range(length))
            assert murmur2(key) == reference(key), length


def test_murmur2_of_known_keys() -> None:
    """Values the Java client gives (its tests: `Utils.murmur2`), as unsigned 32-bit numbers."""
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == (-1486304829) & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == (-58897971) & 0xFFFFFFFF
    assert murmur2(b"abc") == 479470107


def test_partition_for_matches_the_default_partitioner() -> None:
    rng = random.Random(3)
    partitions = list(range(6))
    for _ in range(2000):
        key = f"{rng.getrandbits(128):032x}".encode()
        assert partition_for(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_keyless_event_goes_to_an_available_partition() -> None:
    assert partition_for(None, [0, 1, 2], [2]) == 2
    assert partition_for(None, [0, 1, 2], []) in (0, 1, 2)
