"""Kafka topic names (CONTRACT.md). A namespace prefix isolates test runs on a shared broker."""

from __future__ import annotations

import functools
from dataclasses import dataclass

RECEIVED = "dmp.submissions.received.v1"
VALIDATED = "dmp.submissions.validated.v1"
REJECTED = "dmp.submissions.rejected.v1"


@dataclass(frozen=True)
class Topics:
    """The three submission topics, optionally under a namespace prefix."""

    received: str = RECEIVED
    validated: str = VALIDATED
    rejected: str = REJECTED

    @classmethod
    @functools.lru_cache(maxsize=64)
    def under(cls, namespace: str) -> Topics:
        """Topics named `<namespace>.<contract name>`; the contract names when namespace is empty.

        Remembered (the value is immutable): services ask for it per event through their settings."""
        if not namespace:
            return cls()
        return cls(f"{namespace}.{RECEIVED}", f"{namespace}.{VALIDATED}", f"{namespace}.{REJECTED}")

    def all(self) -> tuple[str, str, str]:
        return (self.received, self.validated, self.rejected)


@dataclass(frozen=True)
class TopicLayout:
    """How the topics are created: partitions, copies of each, and copies a write needs before it counts."""

    partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
