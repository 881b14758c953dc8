"""The repository port: what aggregate's projection writes and its read API reads, whatever stores it.

Hot-path reads and writes go by `_id` only. `query_view` is for the read API; it reads through INDEXES.
View documents are shards (`<bucket>#p<partition>`, see projection.py); `query_view` answers with whole
buckets, one merged document per bucket, `_id` the bucket key, in bucket order, so a page never splits a
bucket's shards. Filters are equality or ranges (`{"month": {"$gte": a, "$lte": b}}`) with `$gt`, `$gte`,
`$lt`, `$lte` on dimensions; a condition on `submissions` applies to the bucket's total and narrows the
always-applied `> 0` (view_query.py).

The listing of submissions reads `listing`: one entry per received event, `_id`
`<partition>:<offset>` of the received topic, so that a page is found by `$in` over consecutive
offsets (see listing.py), never by a range; per submitter, partition and window of offsets,
the offsets of that submitter's entries (`@<submitter>:<partition>:<window>`, field `offsets`), so
that one officer's page reads their entries only; and per value of a filter and window of offsets,
the offsets of the entries of the submissions that have (or once had) it, one field per partition
(`#<filter>:<value>:<window>`, fields `o<partition>`), and per day and hour those of the submissions
changed late (`#late:<day>`, `#late:<day>T<hour>`; apply.py says which).

A generation is one complete set of these collections: generation 0 is `submissions`,
`view_<name>`, `listing` and `progress`; generation N > 0 prefixes each with `g<N>_` (see generation.py).
The adapters are mongo_repository.py and memory_repository.py; writer_cache.py keeps the one writer's copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from shared.store import Document

VIEWS = ("seizures", "routes", "map", "prices", "financial", "treatment", "courses", "trainees", "repeats")

FILTERS: dict[str, tuple[str, ...]] = {
    "seizures": ("country", "year", "drug"),
    "routes": ("route", "drug", "month"),
    "map": ("drug", "route", "seized_on"),
    "prices": ("country", "year", "drug", "market"),
    "financial": ("country", "year", "case_type"),
    "treatment": ("country", "year"),
    "courses": ("country", "year"),
    "trainees": ("country", "year"),
    "repeats": ("country",),
}
"""The dimensions the read API filters each view on."""

INDEXES: dict[str, list[list[str]]] = {
    view: [["bucket", "_id"], *([name, "bucket", "_id"] for name in FILTERS[view])] for view in VIEWS}
"""What `query_view` reads in order: the shards in bucket order, all of them or those of one value of a filtered
dimension (a range, such as `month`, is checked on the shards read in bucket order). MongoDB answers from them, and
so does the embedded store, which also needs every filtered field in one of them to answer at all
(infra/ferretdb/patches/11-key-indexes.patch): without them every page is a scan and a sort of the whole view."""

ViewKey = tuple[str, str]

FROM_FIELDS = ("listed_from", "windowed_from", "ordered_from")
"""Fields of a received partition's progress that say from which offset on its listing data has a property
(apply.progress_documents): each keeps the least offset it was ever given."""


class Writes(Protocol):
    """What projecting a batch needs of a repository (worker.apply_records)."""

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]: ...

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        """Store `docs`; those in `new` were not found when loaded (a hint: they may be inserted)."""
        ...

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None: ...

    async def save_progress(self, docs: Iterable[Document]) -> None:
        """Record progress documents; `next_offset` never goes back, FROM_FIELDS (when given) never forward."""
        ...

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        """The listing entries and windows stored under `keys` (those there are)."""
        ...

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        """Record listing entries (written once: an entry already stored is left as it is), add offsets to the
        submitters' windows (`{window key: offsets}`, a set union: adding one twice changes nothing), and append
        them to the value windows (`{window key: {partition: offsets}}`: one added twice is there twice)."""
        ...

class Repository(Writes, Protocol):
    @property
    def generation(self) -> int: ...

    @property
    def view_writes(self) -> int:
        """How many times this object has written view documents (a failed write counts): what this
        process's own worker changed, known at once (answers.py)."""
        ...

    async def get_submission(self, submission_id: str) -> Document | None: ...

    async def scan_submissions(self, after: str | None, limit: int) -> list[Document]:
        """Submission records in `_id` order after `after` (for comparing generations)."""
        ...

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]: ...

    async def load_progress(self) -> list[Document]:
        """Per topic partition, how far the worker has processed: `{kind, partition, next_offset, at}`."""
        ...

    async def load_listed(self, ids: Iterable[str]) -> dict[str, Document]:
        """The submission records among `ids` as the listing shows them: without their history."""
        ...
