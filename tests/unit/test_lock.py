"""Installs are reproducible: every dependency pyproject.toml names is pinned, with hashes, in the lock files
that `make venv`, CI and the service image install from (`make lock` writes them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pinned(lock: Path) -> dict[str, str]:
    """name → version of every `name==version` line, each followed by its hashes."""
    text = lock.read_text()
    found = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:", text, re.M))
    return {name.lower().replace("_", "-"): version for name, version in found.items()}


def test_every_declared_dependency_is_pinned_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    server = {_name(r) for r in project["optional-dependencies"]["server"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    everything, image = pinned(ROOT / "requirements.lock"), pinned(ROOT / "requirements-server.lock")
    assert runtime | server | dev <= everything.keys(), sorted((runtime | server | dev) - everything.keys())
    assert runtime | server <= image.keys(), sorted((runtime | server) - image.keys())
    assert not dev & image.keys() - (runtime | server), "the image's lock holds only what the services need"
    assert {name: everything[name] for name in image} == image, "both locks pin the same versions"
