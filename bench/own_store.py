"""Running a benchmark against a store of its own, started for it and stopped after it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from infra import store


def on_own_store(folder: Path, measure: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Start a store in `folder` (FerretDB unless `mongod` is on PATH), run `measure(its url)`, stop the store."""
    local = store.start(folder)
    try:
        print(f"store: {local.engine}", flush=True)
        asyncio.run(measure(local.url))
    finally:
        local.stop()
