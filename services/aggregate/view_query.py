"""Answering a view query from its shards: filters on dimensions, whole buckets, the hidden empty ones."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

from services.aggregate.projection import merge_shards
from shared.store import Document

RANGE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}

def split_filters(filters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the query on shards' dimensions, the condition on a bucket's `submissions`); ValueError on other operators."""
    query = dict(filters)
    for name, condition in query.items():
        if isinstance(condition, Mapping) and (not condition or set(condition) - set(RANGE)):
            raise ValueError(f"filter on {name!r} uses operators other than {sorted(RANGE)}")
    count = query.pop("submissions", None)
    bounds = dict(count) if isinstance(count, Mapping) else {} if count is None else {"$gte": count, "$lte": count}
    return query, {**bounds, "$gt": max(bounds.get("$gt", 0), 0)}  # empty buckets stay hidden

def matches(doc: Document, query: Mapping[str, Any]) -> bool:
    return all(_satisfies(doc.get(name), condition) for name, condition in query.items())

def _satisfies(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return bool(value == condition)
    try:
        return value is not None and all(RANGE[op](value, bound) for op, bound in condition.items())
    except TypeError:  # like MongoDB, values of another type never match a range
        return False

def buckets(view: str, shards: Iterable[Document], count: Mapping[str, Any]) -> list[Document]:
    """Consecutive shards of one bucket merged, keeping the buckets whose total `submissions` meets `count`."""
    found: list[Document] = []
    group: list[Document] = []
    for shard in [*shards, None]:
        if group and (shard is None or shard["bucket"] != group[0]["bucket"]):
            merged = merge_shards(view, group)
            if _satisfies(merged.get("submissions", 0), count):
                found.append(merged)
            group = []
        if shard is not None:
            group.append(shard)
    return found

def shard_order(doc: Document) -> tuple[str, str]:
    return doc["bucket"], doc["_id"]
