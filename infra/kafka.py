"""The Apache Kafka broker (KRaft, one node) from Maven Central jars, started as a plain JVM."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.proc import TOOLS, InfraError, free_port, port_open, require, spawn, stop_pid, wait_until

VERSION = os.environ.get("DMP_KAFKA_VERSION", "3.9.2")
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


def home() -> Path:
    return TOOLS / f"kafka-{VERSION}"


def ensure_jars() -> Path:
    """Fetch the broker's jars once into var/tools/kafka-<version>/lib; return that folder."""
    lib = home() / "lib"
    marker = home() / ".complete"
    if marker.exists():
        return lib
    require("java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless).")
    mvn = require("mvn", "Install Maven (Debian: apt-get install maven).")
    print(f"Fetching Apache Kafka {VERSION} jars from Maven Central (once)...", flush=True)
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    cmd = [mvn, "-B", "-q", "-f", str(POM), f"-Dkafka.version={VERSION}",
           "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={lib}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InfraError(f"Maven could not fetch Kafka {VERSION}:\n{result.stdout}\n{result.stderr}")
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise InfraError(f"Maven finished but no kafka_2.13 jar is in {lib}")
    marker.write_text(VERSION)
    return lib


def java() -> str:
    """Java 17 when several JDKs are installed, else whatever `java` is."""
    for candidate in ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/usr/lib/jvm/java-17-openjdk-arm64/bin/java"):
        if Path(candidate).exists():
            return candidate
    return require("java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless).")


@dataclass
class Broker:
    """A broker this process started (or found running) for one data folder.

    `proxied` is an optional second client listener `(listen port, advertised port)`: clients that
    bootstrap through a proxy on the advertised port are told to keep using it, while `bootstrap`
    stays direct. The fault tests put a TCP proxy there to cut or slow one service's traffic.
    """

    data_dir: Path
    port: int
    controller_port: int
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    proxied: tuple[int, int] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def proxied_bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.proxied[1]}" if self.proxied else None

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, as in a crash or an OOM kill."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.pid = None
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.proc = None

    @property
    def log(self) -> Path:
        return self.data_dir / "kafka.log"

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=30)
            self.pid = None
        if self.proc is not None:
            self.proc.wait(timeout=5)
            self.proc = None


SEGMENT_BYTES = 67_108_864
INDEX_BYTES = 1_048_576
"""Each segment's offset and time index files are created at this size and memory-mapped. Kafka's default,
10 MiB, is a sparse file whose first writes fault zeroed pages in: in `make bench`, once other stages had
run, a new topic's first second of traffic cost the broker ~0.7 CPU-seconds in the kernel doing so (perf:
filemap_fault → ext4_mpage_readpages → memset), and every request waited meanwhile. 1 MiB still indexes a
whole segment: an entry per 4 KiB of log (log.index.interval.bytes), 12 bytes in the time index, the larger
one."""


def write_config(data_dir: Path, port: int, controller_port: int, proxied: tuple[int, int] | None = None) -> Path:
    props = data_dir / "server.properties"
    logs = data_dir / "data"
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    advertised = f"PLAINTEXT://127.0.0.1:{port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if proxied is not None:
        listeners += f",PROXIED://127.0.0.1:{proxied[0]}"
        advertised += f",PROXIED://127.0.0.1:{proxied[1]}"
        protocols += ",PROXIED:PLAINTEXT"
    props.write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners={listeners}
advertised.listeners={advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map={protocols}
log.dirs={logs}
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes={SEGMENT_BYTES}
log.index.size.max.bytes={INDEX_BYTES}
""")
    (data_dir / "log4j.properties").write_text(LOG4J)
    return props


def metadata_ok(bootstrap: str) -> bool:
    """True when a metadata request to the broker succeeds."""
    from aiokafka.client import AIOKafkaClient

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not port_open(int(port), host):
        return False

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            return True
        finally:
            await client.close()

    return asyncio.run(probe())


def start(data_dir: Path, port: int | None = None, controller_port: int | None = None,
          timeout: float = 120.0, proxied: tuple[int, int] | None = None) -> Broker:
    """Format (first time) and start a one-node KRaft broker; return once metadata requests work.

    Started again on the same `data_dir` and ports it is the same broker: topics, offsets and
    transactions survive, as after a crash.
    """
    lib = ensure_jars()
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = Broker(data_dir, port or free_port(), controller_port or free_port(), proxied=proxied)
    props = write_config(data_dir, broker.port, broker.controller_port, proxied)
    classpath = f"{lib}/*"
    jvm = java()
    if not (data_dir / "data" / "meta.properties").exists():
        cluster_id = "-"
        while cluster_id.startswith("-"):  # a leading "-" would read as an option to the storage tool
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run([jvm, "-cp", classpath, f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
                              "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
                             capture_output=True, text=True, check=False)
        if fmt.returncode != 0:
            raise InfraError(f"Kafka storage format failed:\n{fmt.stdout}\n{fmt.stderr}")
    heap = os.environ.get("DMP_KAFKA_HEAP", "512m")
    proc = spawn([jvm, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                  f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
                  f"-Dkafka.logs.dir={data_dir}", "-cp", classpath, "kafka.Kafka", str(props)],
                 broker.log)
    broker.pid, broker.proc = proc.pid, proc
    try:
        wait_until(lambda: metadata_ok(broker.bootstrap), timeout, f"Kafka broker on {broker.bootstrap}",
                   interval=0.5, proc=proc, log=broker.log)
    except InfraError:
        broker.stop()
        raise
    return broker


def restart(broker: Broker, timeout: float = 120.0) -> Broker:
    """Start `broker` again (after `kill` or `stop`) on its data folder and ports."""
    return start(broker.data_dir, broker.port, broker.controller_port, timeout=timeout, proxied=broker.proxied)
