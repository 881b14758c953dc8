"""Answers of the views' reads, kept until the views change.

Distinct people are counted when read (projection.py says why), so the trainings view and the fact
sheet read every trainee and repeat of their selection; a map page reads a thousand points, and a page
of a table view every shard of its buckets. Their JSON answers are kept here, keyed by the request and
by the state of the views read: the generation, how many times this process's own worker has written
view documents, and the validated topic's progress per partition (what every worker, in any process,
has applied). Only the validated topic's events
(validated and withdrawn versions) change a view.

A worker writes a batch's view documents first, then the submission records together with progress.
The count of this process's own writes moves as soon as the views are written, before a submission's
status says it was validated: a read that follows a status read here sees the new figures. Progress
moves a moment after the records, so an answer computed from the views of another process's batch
is kept only until that batch's progress is written (progress is read before the views, so an answer
always reflects at least the progress it is kept under). Any change of state drops every kept answer.

The answers are kept as the bytes sent, least recently used dropped first, within `ANSWER_BYTES`, so
the process's memory does not grow with the data.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable

from shared.store import Document

ANSWER_BYTES = 16 * 1024 * 1024
"""What all kept answers may hold together; an answer larger than a quarter of it is sent, never kept."""

Key = tuple[Hashable, ...]


def views_state(generation: int, view_writes: int, progress: Iterable[Document]) -> Key:
    """How far the views read are: generation, this process's view writes, the next validated offset per partition."""
    return (generation, view_writes, *sorted((int(p["partition"]), int(p["next_offset"])) for p in progress
                                             if p.get("kind") == "validated"))


class Answers:
    """Kept answers (bytes) by request, all of one views state, least recently used dropped first."""

    def __init__(self, max_bytes: int = ANSWER_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self.state: Key | None = None
        self._kept: OrderedDict[Key, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def answer(self, request: Key, state: Key, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The answer kept for `request` in views state `state`, else `compute()`'s, kept."""
        if state != self.state:
            self._kept.clear()
            self.held, self.state = 0, state
        body = self._kept.get(request)
        if body is not None:
            self._kept.move_to_end(request)
            return body
        body = await compute()
        if state == self.state:  # not if another request found the views further on meanwhile
            self._keep(request, body)
        return body

    def _keep(self, request: Key, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return
        previous = self._kept.pop(request, None)
        self.held += len(body) - (len(previous) if previous is not None else 0)
        self._kept[request] = body
        while self.held > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self.held -= len(dropped)
