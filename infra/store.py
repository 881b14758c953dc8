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
# every document of a bulk write on its own: 1,000 upserts took ~900 ms, 0.35 ms with NORMAL. NORMAL still
# survives any crash of FerretDB or of a service; only an OS crash or power cut can lose the last commits —
# the same promise as MongoDB's default write concern (journal flushed every 100 ms) and as the Kafka
# broker here, which leaves flushing to the OS.
SQLITE_DURABILITY = "_pragma=synchronous(normal)"


# FerretDB 1.24's SQLite backend looks documents up by `_id` with the expression
# `_ferretdb_sjson->'$._id'`, but builds the `_id` index on `_ferretdb_sjson->"_id"`. SQLite only
# uses an expression index for the identical expression, so every find, update and delete by
# `_id` scans the whole table. The two expressions mean the same; the build makes lookups use the
# indexed one, which turns those scans into index searches.
ID_LOOKUP_FIX = ("internal/backends/sqlite/metadata/metadata.go",
                 'IDColumn = DefaultColumn + "->\'$._id\'"',
                 'IDColumn = DefaultColumn + `->"_id"`')

# It pushes `{_id: value}` down to SQLite but scans the table for `{_id: {$in: [...]}}`, so reading a
# batch's documents took one round trip per document. infra/ferretdb/id_in.go pushes `$in` of
# strings and ObjectIDs down to the same index; these hook it in after the equality case, in queries
# and in `explain` alike.
ID_IN_PUSHDOWN = (("internal/backends/sqlite/collection.go",
                   "\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)",
                   "\tif whereClause == \"\" {\n\t\twhereClause, args = idInClause(params.Filter)\n\t}\n\n"
                   "\tq += whereClause\n\tq += prepareOrderByClause(params.Sort)"),
                  ("internal/backends/sqlite/collection.go",
                   "\torderByClause := prepareOrderByClause(params.Sort)\n",
                   "\tif whereClause == \"\" {\n\t\twhereClause, args = idInClause(params.Filter)\n"
                   "\t\tfilterPushdown = whereClause != \"\"\n\t}\n\n"
                   "\torderByClause := prepareOrderByClause(params.Sort)\n"))

# Its `update` command keeps every statement's cursor, and with it a pooled SQLite connection, open until
# the whole command ends (a `defer` inside the statement loop). An update of ~100 existing documents then
# holds every connection of the pool (100) and waits forever for one more; smaller ones still open
# connections they need not. The build closes each statement's cursor once the statement is applied: one
# connection at a time, and 1,000 replacements in one command complete (shared/store.py's BULK_CHUNK still
# keeps to what a stock FerretDB can take).
UPDATE_CURSOR_CLOSE = (("internal/handler/msg_update.go",
                        "\t\tcloser := iterator.NewMultiCloser()\n\t\tdefer closer.Close()\n",
                        "\t\tcloser := iterator.NewMultiCloser()\n"),
                       ("internal/handler/msg_update.go",
                        '\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)\n',
                        '\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)\n\t\tcloser.Close()\n'))

# Every cursor, iterator and transaction is registered with a pprof profile and given a finalizer, for
# FerretDB's own leak checks: a stack walk each time, ~8% of its CPU under aggregate's writes. Release
# builds skip the registration; debug builds (its tests) keep it.
RESOURCE_TRACKING_OFF = tuple(
    ("internal/util/resource/resource.go", f"func {name}(obj any, token *Token) {{\n\tcheckArgs(obj, token)\n",
     f"func {name}(obj any, token *Token) {{\n\tcheckArgs(obj, token)\n"
     "\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n")
    for name in ("Track", "Untrack"))

# Each statement of an `update` command is a lookup and a SQLite transaction of its own, and every
# transaction also rewrites the collection's secondary indexes: 20 replacements in each of three view
# collections took 58-64 ms. infra/ferretdb/update_by_id.go serves a command whose statements each change
# or upsert one document by a distinct string or ObjectID `_id` (aggregate's records, view shards and
# progress) with one `$in` lookup and one transaction (21-23 ms); each statement is still applied by
# FerretDB's own code. Any other command goes on as before.
UPDATE_BY_ID = ("internal/handler/msg_update.go",
                "\tfor _, u := range params.Updates {\n\t\tc, err := db.Collection(params.Collection)",
                "\tif c, err := db.Collection(params.Collection); err == nil {\n"
                "\t\tif m, mod, ups, done, err := h.updateByID(ctx, c, params); done {\n"
                "\t\t\treturn m, mod, ups, err\n\t\t}\n\t}\n\n"
                "\tfor _, u := range params.Updates {\n\t\tc, err := db.Collection(params.Collection)")

# SQLite runs one write transaction per database at a time, and FerretDB begins each without waiting its turn:
# one that finds another in progress is put to sleep by SQLite's busy handler for 1, 2, 5, 10 ms and more,
# however soon the other ends. aggregate writes several collections of one database at once, so its writes
# queued behind each other in those sleeps. And the write that fills the WAL past its threshold (1,000 pages)
# then copies it into the database and syncs both files before it answers. infra/ferretdb/writer_turn.go
# makes a database's write transactions take turns in FerretDB (each starts the moment the previous one
# commits) and checkpoints each database's WAL every second in the background (PASSIVE: blocking neither
# readers nor writers); a write checkpoints only if the WAL has grown past 10,000 pages (40 MB) regardless.
WRITER_TURN = (("internal/util/fsql/db.go",
                "\ttoken     *resource.Token\n\tBatchSize int\n}",
                "\ttoken     *resource.Token\n\tBatchSize int\n\n\tws *writerState\n}"),
               ("internal/util/fsql/db.go",
                "\t\ttoken:            resource.NewToken(),\n\t}",
                "\t\ttoken:            resource.NewToken(),\n\t\tws:               newWriterState(),\n\t}"),
               ("internal/util/fsql/db.go",
                "\tresource.Untrack(db, db.token)\n\treturn db.sqlDB.Close()",
                "\tresource.Untrack(db, db.token)\n\tdb.ws.stop()\n\n\treturn db.sqlDB.Close()"),
               ("internal/util/fsql/db.go",
                "\tvar sqlTx *sql.Tx\n\n\tif sqlTx, err = db.sqlDB.BeginTx(ctx, nil); err != nil {",
                "\tvar sqlTx *sql.Tx\n\n\trelease, err := db.ws.wait(ctx)\n\tif err != nil {\n\t\treturn\n\t}\n\n"
                "\tdefer release()\n\n\tif sqlTx, err = db.sqlDB.BeginTx(ctx, nil); err != nil {"),
               ("internal/backends/sqlite/metadata/pool/opendb.go",
                "\treturn fsql.WrapDB(db, name, l), nil",
                "\tres := fsql.WrapDB(db, name, l)\n\tif !memory {\n\t\tres.CheckpointInBackground()\n\t}\n\n"
                "\treturn res, nil"),
               ("internal/backends/sqlite/metadata/pool/uri.go",
                "\t\tvalues.Add(\"_pragma\", \"auto_vacuum(none)\") // TODO https://github.com/FerretDB/FerretDB/issues/3612\n\t}\n",
                "\t\tvalues.Add(\"_pragma\", \"auto_vacuum(none)\") // TODO https://github.com/FerretDB/FerretDB/issues/3612\n\t}\n\n"
                "\tvalues.Add(\"_pragma\", \"wal_autocheckpoint(10000)\")\n"))

# A replacement does not depend on the document it replaces, yet the lookup decoded every stored document
# (half the cost of a command of replacements). With `OnlyIDs`, a query reads just the stored `_id`s;
# update_by_id.go asks for that when every statement of a command is a replacement.
ONLY_IDS = (("internal/backends/collection.go",
             "\tOnlyRecordIDs bool\n\tComment       string\n}",
             "\tOnlyRecordIDs bool\n\tComment       string\n\n"
             "\tOnlyIDs bool // read only `_id`s (not for capped collections)\n}"),
            ("internal/backends/sqlite/collection.go",
             "\tq := prepareSelectClause(meta.TableName, params.Comment, meta.Capped(), params.OnlyRecordIDs)\n",
             "\tq := prepareSelectClause(meta.TableName, params.Comment, meta.Capped(), params.OnlyRecordIDs)\n"
             "\tif params.OnlyIDs && !meta.Capped() {\n\t\tq = idOnlySelect(meta.TableName)\n\t}\n"))

# Inserts and updates encode their documents inside the write transaction, so concurrent writes to one database
# encoded one at a time, holding its turn (WRITER_TURN). infra/ferretdb/prepared_writes.go encodes them first.
PREPARED_WRITES = (("internal/backends/sqlite/collection.go",
                    "\terr := db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tbatchSize := c.r.BatchSize\n"
                    "\t\tif batchSize < 1 {\n\t\t\tpanic(\"batch-size should be greater or equal to 1\")\n\t\t}\n\n"
                    "\t\tvar batch []*types.Document\n\t\tdocs := params.Docs\n\n\t\tfor len(docs) > 0 {\n"
                    "\t\t\ti := min(batchSize, len(docs))\n\t\t\tbatch, docs = docs[:i], docs[i:]\n\n"
                    "\t\t\tq, args, err := prepareInsertStatement(meta.TableName, meta.Capped(), batch)\n"
                    "\t\t\tif err != nil {\n\t\t\t\treturn lazyerrors.Error(err)\n\t\t\t}\n\n"
                    "\t\t\tif _, err = tx.ExecContext(ctx, q, args...); err != nil {\n",
                    "\tstatements, err := prepareInsertStatements(meta.TableName, meta.Capped(), params.Docs, "
                    "c.r.BatchSize)\n\tif err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n"
                    "\terr = db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tfor _, s := range statements {\n"
                    "\t\t\tif _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {\n"),
                   ("internal/backends/sqlite/collection.go",
                    "\terr := db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tfor _, doc := range params.Docs {\n"
                    "\t\t\tb, err := sjson.Marshal(doc)\n\t\t\tif err != nil {\n\t\t\t\treturn lazyerrors.Error(err)\n"
                    "\t\t\t}\n\n\t\t\tid, _ := doc.Get(\"_id\")\n\t\t\tmust.NotBeZero(id)\n\n"
                    "\t\t\targ := string(must.NotFail(sjson.MarshalSingleValue(id)))\n\n"
                    "\t\t\tr, err := tx.ExecContext(ctx, q, string(b), arg)\n",
                    "\trows, err := prepareUpdateRows(params.Docs)\n\tif err != nil {\n"
                    "\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n"
                    "\terr = db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tfor _, row := range rows {\n"
                    "\t\t\tr, err := tx.ExecContext(ctx, q, row[0], row[1])\n"))

# FerretDB applies an update command's documents with one UPDATE each, and its SQLite driver parses every
# statement anew each time it runs. infra/ferretdb/prepared_writes.go joins a command's documents to their
# `_id`s in one UPDATE (per 500), when no two share an `_id`.
UPDATES_JOINED = ("internal/backends/sqlite/collection.go",
                  "\terr = db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tfor _, row := range rows {\n"
                  "\t\t\tr, err := tx.ExecContext(ctx, q, row[0], row[1])\n",
                  "\tstatements := prepareUpdateStatements(q, meta.TableName, rows)\n\n"
                  "\terr = db.InTransaction(ctx, func(tx *fsql.Tx) error {\n\t\tfor _, s := range statements {\n"
                  "\t\t\tr, err := tx.ExecContext(ctx, s.q, s.args...)\n")

# Its SQLite backend answers every query by scanning the collection, except a lookup by `_id` (and its `$in`,
# ID_IN_PUSHDOWN): it never reads an index built for other fields, yet SQLite keeps each one up to date on every
# write, evaluating its JSON expressions on the old and the new document. The views' indexes (built for MongoDB's
# readers) cost ~10% of the store's CPU writing aggregate's small batches, 2-3% in the e2e bench, for nothing. The
# build records an index that enforces nothing (not unique) as created, so it is listed, sized (0) and dropped like
# any other, and builds only unique ones (`_id`'s among them) in SQLite.
UNUSED_INDEXES = (("internal/backends/sqlite/metadata/registry.go",
                   "\t\t\tcontinue\n\t\t}\n\n\t\tq := \"CREATE \"\n",
                   "\t\t\tcontinue\n\t\t}\n\n\t\tif !index.Unique {\n\t\t\tcreated = append(created, index.Name)\n"
                   "\t\t\tc.Settings.Indexes = append(c.Settings.Indexes, index)\n\n\t\t\tcontinue\n\t\t}\n\n"
                   "\t\tq := \"CREATE \"\n"),
                  ("internal/backends/sqlite/metadata/registry.go",
                   'q := fmt.Sprintf("DROP INDEX %q", c.TableName+"_"+name)',
                   'q := fmt.Sprintf("DROP INDEX IF EXISTS %q", c.TableName+"_"+name)'),
                  ("internal/backends/sqlite/collection.go",
                   "\t\tIndexSizes:      indexSizes,\n",
                   "\t\tIndexSizes:      withUnbuilt(indexSizes[:i], indexMap),\n"))

FERRETDB_CHANGES = (ID_LOOKUP_FIX, *ID_IN_PUSHDOWN, *UPDATE_CURSOR_CLOSE, *RESOURCE_TRACKING_OFF, UPDATE_BY_ID,
                    *WRITER_TURN, *ONLY_IDS, *PREPARED_WRITES, UPDATES_JOINED, *UNUSED_INDEXES)
ADDED_SOURCES = {Path(__file__).parent / "ferretdb" / name: target for name, target in (
    ("id_in.go", "internal/backends/sqlite/id_in.go"),
    ("update_by_id.go", "internal/handler/update_by_id.go"),
    ("writer_turn.go", "internal/util/fsql/writer_turn.go"),
    ("prepared_writes.go", "internal/backends/sqlite/prepared_writes.go"),
    ("unbuilt_indexes.go", "internal/backends/sqlite/unbuilt_indexes.go"))}


def ferretdb_binary() -> Path:
    """The build's folder is named after its changes, so changing them builds FerretDB again."""
    changes = hashlib.sha256(repr(FERRETDB_CHANGES).encode())
    for source in ADDED_SOURCES:
        changes.update(source.read_bytes())
    return TOOLS / f"ferretdb-{FERRETDB_VERSION}-{changes.hexdigest()[:10]}" / "ferretdb"


def patch_ferretdb(src: Path) -> None:
    for path, old, new in FERRETDB_CHANGES:
        source = (src / path).read_text()
        if source.count(old) != 1:
            raise InfraError(f"FerretDB source changed: cannot apply a change to {path}")
        (src / path).write_text(source.replace(old, new))
    for added, target in ADDED_SOURCES.items():
        shutil.copyfile(added, src / target)


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
    # FerretDB's garbage collector ran at ~8% of its CPU with Go's default target (GOGC=100); a heap allowed
    # to grow to 5× what is live before a collection costs a few tens of MB here. A GOGC already set wins.
    proc = spawn(cmd, log, env={"GOGC": os.environ.get("GOGC", "400")} if store.engine == "ferretdb" else None)
    store.pid, store.proc = proc.pid, proc
    try:
        wait_until(lambda: ping(store.url), timeout, f"{store.engine} on port {port}", proc=proc, log=log)
    except InfraError:
        store.stop()
        raise
    return store
