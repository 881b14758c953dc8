"""The local broker's configuration keeps what a segment needs while staying light to start."""

from __future__ import annotations

from pathlib import Path

from infra.kafka import write_config

INDEX_INTERVAL_BYTES = 4096
"""Kafka's log.index.interval.bytes, which the local broker leaves at its default: an index entry per 4 KiB."""
TIME_INDEX_ENTRY_BYTES = 12
"""A time index entry (8-byte timestamp, 4-byte relative offset); an offset index entry takes 8."""


def properties(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in lines}


def test_the_index_files_can_index_a_whole_segment(tmp_path: Path) -> None:
    props = properties(write_config(tmp_path, 9092, 9093))
    assert "log.index.interval.bytes" not in props
    entries = int(props["log.index.size.max.bytes"]) // TIME_INDEX_ENTRY_BYTES
    # A full index rolls the segment early: harmless, but then the setting would not mean what it says.
    assert entries * INDEX_INTERVAL_BYTES >= int(props["log.segment.bytes"])


def test_the_index_files_are_smaller_than_kafkas_default(tmp_path: Path) -> None:
    props = properties(write_config(tmp_path, 9092, 9093))
    assert int(props["log.index.size.max.bytes"]) < 10 * 1024 * 1024
