"""The document store: a MongoDB the user points at, a local `mongod`, or FerretDB on SQLite."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infra.proc import TOOLS, InfraError, free_port, require, spawn, stop_pid, wait_until

FERRETDB_VERSION = "1.24.2"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"


@dataclass
class Store:
    """A store this process started, or one that was already running (pid None)."""

    url: str
    engine: str
    data_dir: Path | None = None
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path | None:
        return self.data_dir / f"{self.engine}.log" if self.data_dir else None

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=20)
            self.pid = None
        if self.proc is not None:
            self.proc.wait(timeout=5)
            self.proc = None


def url_for(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def ping(url: str, timeout_ms: int = 2000) -> bool:
    """True when the server at `url` answers `ping`."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=timeout_ms,
                                                         connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    finally:
        client.close()


# SQLite's default in WAL mode (synchronous=FULL) syncs the log to disk on every commit, and FerretDB commits
# every document of a bulk write on its own, which made bulk writes disk-bound. NORMAL still
# survives any crash of FerretDB or of a service; only an OS crash or power cut can lose the last commits —
# the same promise as MongoDB's default write concern (journal flushed every 100 ms) and as the Kafka
# broker here, which leaves flushing to the OS.
SQLITE_DURABILITY = "_pragma=synchronous(normal)"


PATCHES = Path(__file__).parent / "ferretdb" / "patches"
"""The changes built into FerretDB, applied in name order; each file's header says what it fixes and by how much."""


def ferretdb_patches() -> list[Path]:
    return sorted(PATCHES.glob("*.patch"))


def ferretdb_binary() -> Path:
    """The build's folder is named after its patches, so changing them builds FerretDB again."""
    changes = hashlib.sha256()
    for patch in ferretdb_patches():
        changes.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return TOOLS / f"ferretdb-{FERRETDB_VERSION}-{changes.hexdigest()[:10]}" / "ferretdb"


def patch_ferretdb(src: Path, patches: list[Path] | None = None) -> None:
    """Apply every patch with `git apply`, failing with the patch's name if one no longer applies."""
    git = require("git", "Install git (Debian: apt-get install git); it applies FerretDB's patches.")
    # Inside a git work tree (var/ is in this repository's), `git apply` would take paths from the work
    # tree's top and silently skip the source's files: the ceiling keeps it from finding one.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(src.resolve().parent)}
    for patch in ferretdb_patches() if patches is None else patches:
        applied = subprocess.run([git, "apply", "--whitespace=nowarn", str(patch)], cwd=src, capture_output=True,
                                 text=True, check=False, env=env)
        if applied.returncode != 0:
            raise InfraError(f"{patch.name} no longer applies to FerretDB v{FERRETDB_VERSION}:\n{applied.stderr}")


def ensure_ferretdb() -> Path:
    """Build FerretDB once from the Go module proxy, with the version file its module lacks."""
    binary = ferretdb_binary()
    if binary.exists():
        return binary
    go = require("go", "Install Go 1.22+ (https://go.dev/doc/install or Debian: apt-get install golang).")
    print(f"Building FerretDB v{FERRETDB_VERSION} from the Go module proxy (once, a few minutes)...", flush=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-modcacherw"}
    got = subprocess.run([go, "mod", "download", "-json", f"{FERRETDB_MODULE}@v{FERRETDB_VERSION}"],
                         capture_output=True, text=True, env=env, check=False, cwd=TOOLS.parent)
    if got.returncode != 0:
        raise InfraError(f"go mod download failed:\n{got.stdout}\n{got.stderr}")
    import json

    module_dir = Path(json.loads(got.stdout)["Dir"])
    src = TOOLS / "build" / f"ferretdb-{FERRETDB_VERSION}"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(module_dir, src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    (src / "build" / "version" / "version.txt").write_text(f"v{FERRETDB_VERSION}\n")
    patch_ferretdb(src)
    binary.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([go, "build", "-trimpath", "-o", str(binary), "./cmd/ferretdb"],
                           capture_output=True, text=True, env=env, check=False, cwd=src)
    if built.returncode != 0:
        raise InfraError(f"FerretDB build failed:\n{built.stdout}\n{built.stderr}")
    shutil.rmtree(src, ignore_errors=True)
    return binary


def start(data_dir: Path, port: int | None = None, timeout: float = 60.0) -> Store:
    """Start a local store on `port` (free if None): `mongod` when on PATH, else FerretDB."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    mongod = shutil.which("mongod")
    if mongod and not os.environ.get("DMP_FORCE_FERRETDB"):
        db = data_dir / "mongod"
        db.mkdir(exist_ok=True)
        store = Store(url_for(port), "mongod", data_dir)
        cmd = [mongod, "--dbpath", str(db), "--bind_ip", "127.0.0.1", "--port", str(port), "--quiet"]
    else:
        binary = ensure_ferretdb()
        db = data_dir / "ferretdb"
        db.mkdir(exist_ok=True)
        store = Store(url_for(port), "ferretdb", data_dir)
        cmd = [str(binary), "--handler=sqlite", f"--sqlite-url=file:{db}/?{SQLITE_DURABILITY}",
               f"--listen-addr=127.0.0.1:{port}",
               f"--state-dir={db}", "--telemetry=disable", "--log-level=warn", "--debug-addr=-"]
    log = store.log
    assert log is not None
    # With Go's default target (GOGC=100) FerretDB's garbage collector took a visible share of its CPU; a heap
    # allowed to grow to 5 times what is live before a collection costs little memory here. A GOGC already set wins.
    proc = spawn(cmd, log, env={"GOGC": os.environ.get("GOGC", "400")} if store.engine == "ferretdb" else None)
    store.pid, store.proc = proc.pid, proc
    try:
        wait_until(lambda: ping(store.url), timeout, f"{store.engine} on port {port}", proc=proc, log=log)
    except InfraError:
        store.stop()
        raise
    return store
