"""The runbook's table of failing checks, read from the project's own documentation for the operator page."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[3]
SOURCES = (ROOT / "docs" / "runbook.md", ROOT / "docs" / "operations.md", ROOT / "README.md")
_HEADER = re.compile(r"^\|\s*service\s*\|\s*failing\s*\|", re.IGNORECASE)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def runbook_entries(text: str) -> list[dict[str, object]]:
    """Each row of the first `| service | failing | meaning | what to do |` table in `text`."""
    entries: list[dict[str, object]] = []
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if _HEADER.match(line):
            for row in lines[start + 2:]:
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                if len(cells) >= 4:
                    entries.append({"services": [s.strip() for s in cells[0].split(",")],
                                    "failing": cells[1].strip("`"), "meaning": cells[2], "action": cells[3]})
            break
    return entries


@cache
def runbook_json() -> bytes:
    """`{"source": file, "entries": [...]}` from the first documentation file that has the table."""
    for source in SOURCES:
        if source.is_file():
            entries = runbook_entries(source.read_text(encoding="utf-8"))
            if entries:
                return orjson.dumps({"source": source.relative_to(ROOT).as_posix(), "entries": entries})
    return orjson.dumps({"source": None, "entries": []})
