"""The FerretDB build's patches: each says what it fixes, and one that no longer applies stops the build by name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.proc import InfraError
from infra.store import ferretdb_patches, patch_ferretdb


def test_every_patch_opens_with_what_it_fixes_and_its_measured_effect() -> None:
    patches = ferretdb_patches()
    assert patches, "no patch found under infra/ferretdb/patches/"
    for patch in patches:
        header = patch.read_text().split("\ndiff --git ", 1)[0]
        assert header.startswith("Fixes: "), patch.name
        assert "Measured effect: " in header, patch.name


def test_a_patch_applies_to_the_source_it_was_made_for(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.go").write_text("package a\n\nconst X = 1\n")
    patch = _patch(tmp_path, "01-x.patch", "const X = 1", "const X = 2")
    patch_ferretdb(src, [patch])
    assert (src / "a.go").read_text() == "package a\n\nconst X = 2\n"


def test_a_patch_applies_inside_another_repositorys_work_tree(tmp_path: Path) -> None:
    """The build runs under var/, inside this repository's work tree."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    src = tmp_path / "var" / "build" / "src"
    src.mkdir(parents=True)
    (src / "a.go").write_text("package a\n\nconst X = 1\n")
    patch = _patch(tmp_path / "var", "01-x.patch", "const X = 1", "const X = 2")
    patch_ferretdb(src, [patch])
    assert (src / "a.go").read_text() == "package a\n\nconst X = 2\n"


def test_a_patch_that_no_longer_applies_fails_the_build_naming_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.go").write_text("package a\n\nconst X = 3\n")
    patch = _patch(tmp_path, "07-stale.patch", "const X = 1", "const X = 2")
    with pytest.raises(InfraError, match=r"07-stale\.patch no longer applies"):
        patch_ferretdb(src, [patch])
    assert (src / "a.go").read_text() == "package a\n\nconst X = 3\n"


def _patch(tmp: Path, name: str, old: str, new: str) -> Path:
    """A patch made by git itself from a file's `old` line to `new`, with a header as the real ones have."""
    repo = tmp / "made"
    repo.mkdir(exist_ok=True)
    (repo / "a.go").write_text(f"package a\n\n{old}\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "a.go"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "old"], cwd=repo, check=True)
    (repo / "a.go").write_text(f"package a\n\n{new}\n")
    diff = subprocess.run([*git, "diff"], cwd=repo, check=True, capture_output=True, text=True).stdout
    patch = tmp / name
    patch.write_text(f"Fixes: X.\n\nMeasured effect: none.\n\n{diff}")
    return patch
