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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from infra.proc import TOOLS, InfraError, free_port, port_open, require, spawn, stop_pid, wait_until

DEFAULT_VERSION = "4.4.0"
"""The newest Kafka release on Maven Central that the project's tiers pass against (docs/kafka.md)."""
VERSION = os.environ.get("DMP_KAFKA_VERSION", DEFAULT_VERSION)
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
RELOAD4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""
LOG4J2 = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


@dataclass(frozen=True)
class Logging:
    """How one Kafka line logs: 4.x through Log4j 2, 3.x through reload4j (Log4j 1's API)."""

    profile: str
    file: str
    text: str
    property: str

    def flag(self, data_dir: Path) -> str:
        """The JVM system property that points the broker (or a tool) at its configuration file."""
        return f"-D{self.property}=file:{data_dir / self.file}"


def logging_for(version: str) -> Logging:
    if int(version.split(".", 1)[0]) >= 4:
        return Logging("log4j2", "log4j2.properties", LOG4J2, "log4j2.configurationFile")
    return Logging("reload4j", "log4j.properties", RELOAD4J, "log4j.configuration")


LOGGING = logging_for(VERSION)


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
    cmd = [mvn, "-B", "-q", "-f", str(POM), f"-Dkafka.version={VERSION}", "-P", LOGGING.profile,
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

    Alone, a broker is its own controller quorum. In a cluster, `node_id` tells it apart and `voters`
    lists every node's controller (`controller.quorum.voters`); all nodes share one `cluster_id`.
    """

    data_dir: Path
    port: int
    controller_port: int
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    proxied: tuple[int, int] | None = None
    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def proxied_bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.proxied[1]}" if self.proxied else None

    @property
    def quorum(self) -> str:
        return self.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


def write_config(data_dir: Path, port: int, controller_port: int, proxied: tuple[int, int] | None = None,
                 node_id: int = 1, voters: str = "") -> Path:
    """The broker's server.properties; with `voters` naming three nodes, the settings of a three-node cluster.

    The internal topics (group offsets, transaction state) and new topics get a copy on every node,
    up to three, and a write needs all but one of them: one broker may fail without losing an
    acknowledged write or stopping the pipeline.
    """
    voters = voters or f"{node_id}@127.0.0.1:{controller_port}"
    copies = min(3, len(voters.split(",")))
    in_sync = max(1, copies - 1)
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
node.id={node_id}
controller.quorum.voters={voters}
listeners={listeners}
advertised.listeners={advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map={protocols}
log.dirs={logs}
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor={copies}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={copies}
transaction.state.log.min.isr={in_sync}
transaction.state.log.num.partitions=6
min.insync.replicas={in_sync}
default.replication.factor={copies}
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes={SEGMENT_BYTES}
log.index.size.max.bytes={INDEX_BYTES}
""")
    (data_dir / LOGGING.file).write_text(LOGGING.text)
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


def new_cluster_id() -> str:
    """16 random bytes, base64url, unpadded, not starting with "-" (it would read as an option)."""
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def launch(broker: Broker) -> None:
    """Format `broker`'s data folder (first time only) and start its JVM; returns at once."""
    lib = ensure_jars()
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    props = write_config(broker.data_dir, broker.port, broker.controller_port, broker.proxied,
                         broker.node_id, broker.voters)
    classpath = f"{lib}/*"
    jvm = java()
    if not (broker.data_dir / "data" / "meta.properties").exists():
        broker.cluster_id = broker.cluster_id or new_cluster_id()
        fmt = subprocess.run([jvm, "-cp", classpath, LOGGING.flag(broker.data_dir),
                              "kafka.tools.StorageTool", "format", "-t", broker.cluster_id, "-c", str(props)],
                             capture_output=True, text=True, check=False)
        if fmt.returncode != 0:
            raise InfraError(f"Kafka storage format failed:\n{fmt.stdout}\n{fmt.stderr}")
    heap = os.environ.get("DMP_KAFKA_HEAP", "512m")
    proc = spawn([jvm, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                  LOGGING.flag(broker.data_dir), f"-Dkafka.logs.dir={broker.data_dir}", "-cp", classpath,
                  "kafka.Kafka", str(props)],
                 broker.log)
    broker.pid, broker.proc = proc.pid, proc


def wait_serving(broker: Broker, timeout: float) -> None:
    """Return once `broker` answers metadata requests; stop it and raise if it does not in time."""
    try:
        wait_until(lambda: metadata_ok(broker.bootstrap), timeout, f"Kafka broker on {broker.bootstrap}",
                   interval=0.5, proc=broker.proc, log=broker.log)
    except InfraError:
        broker.stop()
        raise


def start(data_dir: Path, port: int | None = None, controller_port: int | None = None,
          timeout: float = 120.0, proxied: tuple[int, int] | None = None) -> Broker:
    """Format (first time) and start a one-node KRaft broker; return once metadata requests work.

    Started again on the same `data_dir` and ports it is the same broker: topics, offsets and
    transactions survive, as after a crash.
    """
    broker = Broker(data_dir, port or free_port(), controller_port or free_port(), proxied=proxied)
    launch(broker)
    wait_serving(broker, timeout)
    return broker


def restart(broker: Broker, timeout: float = 120.0) -> Broker:
    """Start `broker` again (after `kill` or `stop`) on its data folder and ports."""
    launch(broker)
    wait_serving(broker, timeout)
    return broker


def brokers_serving(bootstrap: str) -> int:
    """How many brokers the cluster's metadata lists as registered (0 when none answers)."""
    from aiokafka.client import AIOKafkaClient

    async def probe() -> int:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            return len(metadata.brokers())
        except Exception:  # noqa: BLE001 - any failure means "none yet"
            return 0
        finally:
            await client.close()

    return asyncio.run(probe())


@dataclass
class Cluster:
    """Brokers on one machine that form one KRaft cluster, each broker and controller, each with its own
    ports and data folder."""

    brokers: list[Broker]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def node(self, node_id: int) -> Broker:
        return next(b for b in self.brokers if b.node_id == node_id)

    def wait_complete(self, timeout: float = 180.0) -> None:
        """Return once every broker answers and the metadata lists them all."""
        for broker in self.brokers:
            if broker.running:
                wait_serving(broker, timeout)
        wait_until(lambda: brokers_serving(self.bootstrap) == len(self.brokers), timeout,
                   f"all {len(self.brokers)} brokers registered", interval=0.5)

    def stop(self) -> None:
        """SIGTERM every broker at once (one by one, the last would wait for a quorum that has gone)."""
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            list(pool.map(Broker.stop, self.brokers))

    def kill(self) -> None:
        for broker in self.brokers:
            broker.kill()


def start_cluster(base: Path, size: int = 3, timeout: float = 180.0) -> Cluster:
    """Format (first time) and start `size` brokers under `base/kafka-<n>`; return once all serve.

    The controllers need a majority of the quorum to elect a leader, so every node is launched
    before any is waited for.
    """
    ports = [(free_port(), free_port()) for _ in range(size)]
    voters = ",".join(f"{n}@127.0.0.1:{controller}" for n, (_, controller) in enumerate(ports, start=1))
    cluster_id = new_cluster_id()
    cluster = Cluster([Broker(base / f"kafka-{n}", port, controller, node_id=n, voters=voters, cluster_id=cluster_id)
                       for n, (port, controller) in enumerate(ports, start=1)])
    try:
        for broker in cluster.brokers:
            launch(broker)
        cluster.wait_complete(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster
