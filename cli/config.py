"""Where the command line keeps its files, and which servers and key it uses.

`dmp login` stores the ingest URL, the aggregate URL and the API key in `config.json` in the
user's config folder (mode 0600, since it holds a key). The queue lives in the user's data folder.
`DMP_HOME`, when set, holds both (tests, or several profiles side by side).

Precedence, highest first: a command's own option, the environment (`DMP_INGEST_URL`,
`DMP_AGGREGATE_URL`, `DMP_KEY`), the config file, the defaults (127.0.0.1 ports 8000 and 8002).
Without an explicit aggregate URL it is derived from the ingest URL in use: same scheme and host,
port 8002.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs

APP = "dmp"
DEFAULT_INGEST_URL = "http://127.0.0.1:8000"
AGGREGATE_PORT = 8002


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.json"

    @property
    def queue_file(self) -> Path:
        return self.data_dir / "queue.sqlite3"


def paths(env: Mapping[str, str] | None = None) -> Paths:
    """The config and data folders: both `$DMP_HOME` if set, else the platform's per-user folders."""
    env = os.environ if env is None else env
    home = env.get("DMP_HOME")
    if home:
        return Paths(Path(home), Path(home))
    return Paths(platformdirs.user_config_path(APP), platformdirs.user_data_path(APP))


@dataclass(frozen=True)
class Settings:
    """The servers and key one command uses."""

    ingest_url: str
    aggregate_url: str
    key: str | None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def derive_aggregate_url(ingest_url: str) -> str:
    """aggregate on the ingest URL's host: `http://host:8000/x` → `http://host:8002`."""
    parts = urlsplit(ingest_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return urlunsplit((parts.scheme or "http", f"{host}:{AGGREGATE_PORT}", "", "", ""))


def load(p: Paths) -> dict[str, Any]:
    """The stored config, or {} if there is none."""
    try:
        stored: Any = json.loads(p.config_file.read_text())
    except FileNotFoundError:
        return {}
    return stored if isinstance(stored, dict) else {}


def save(p: Paths, values: dict[str, Any]) -> None:
    """Write the config atomically, readable by the user only (it holds the API key)."""
    p.config_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.config_dir, prefix=".config-", suffix=".json")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(values, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, p.config_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve(p: Paths, ingest_url: str | None = None, aggregate_url: str | None = None,
            env: Mapping[str, str] | None = None) -> Settings:
    """The settings in force: options, then environment, then the config file, then defaults."""
    env = os.environ if env is None else env
    stored = load(p)
    ingest_override = ingest_url or env.get("DMP_INGEST_URL")
    ingest = ingest_override or stored.get("ingest_url") or DEFAULT_INGEST_URL
    aggregate = aggregate_url or env.get("DMP_AGGREGATE_URL")
    if not aggregate:
        # An overridden ingest URL points somewhere else than the stored pair: derive rather than mix.
        aggregate = derive_aggregate_url(ingest) if ingest_override else (
            stored.get("aggregate_url") or derive_aggregate_url(ingest))
    key = env.get("DMP_KEY") or stored.get("key") or None
    return Settings(ingest.rstrip("/"), aggregate.rstrip("/"), key)


def masked(key: str | None) -> str:
    """A key fit to print: its first characters only."""
    if not key:
        return "(none)"
    return key[:8] + "…" if len(key) > 8 else "…"
