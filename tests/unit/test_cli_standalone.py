"""The officer's command line stands alone: its commands run without the server's packages, and the
administration commands, which need the store and broker, are in a group of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "aiokafka", "pymongo", "prometheus_client")

WITHOUT_SERVER = f"""
import sys

class NoServerPackages:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_PACKAGES!r}:
            raise ImportError(f"{{name}} is a server package")
        return None

sys.meta_path.insert(0, NoServerPackages())
sys.argv = ["dmp", *sys.argv[1:]]
from cli.main import app
app()
"""


def dmp_without_server(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_SERVER, *args], cwd=ROOT, capture_output=True, text=True,
                          env={"DMP_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
                          check=False, timeout=60)


def test_the_officers_commands_run_without_the_server_packages(tmp_path: Path) -> None:
    helped = dmp_without_server(tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    template = dmp_without_server(tmp_path, "template", "seizure")
    assert template.returncode == 0, template.stderr
    assert template.stdout.splitlines()[0].startswith("id,")
    sheet = tmp_path / "seizures.csv"
    sheet.write_text(template.stdout + ",2025-03-14,AFG,Islam Qala,,,heroin,12.5,kg,1,2,land,balkan,,,,\n")
    imported = dmp_without_server(tmp_path, "import", str(sheet), "--type", "seizure", "--no-sync")
    assert imported.returncode == 0, imported.stderr
    assert "1 new" in imported.stdout and "0 with problems" in imported.stdout  # checked with the server's rules


def test_administration_is_its_own_group_that_says_it_needs_the_store() -> None:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["admin", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "store" in result.output
    for group in ("keys", "views", "contracts"):
        assert group in result.output
    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "keys " not in top and "views " not in top
