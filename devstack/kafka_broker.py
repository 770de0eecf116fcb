"""The local Kafka: a real Apache Kafka broker (KRaft, combined mode) from Maven Central jars."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack.daemon import Daemon, last_line, port_open
from streams.errors import UserError
from streams.topics import min_insync_replicas

RESOURCES = Path(__file__).resolve().parent / "resources"
POM = RESOURCES / "pom.xml"


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert match, "pom.xml names the Kafka version"
    return match.group(1)


@dataclass
class KafkaBroker:
    """Resolves the jars once (cached), formats the storage once, runs ``kafka.Kafka``.

    Alone (the default) it is its own controller quorum. As node ``node_id`` of a cluster,
    ``voters`` names the static quorum (``id@host:port,...``) and ``cluster_id_file`` holds
    the id every node formats its storage with.
    """

    devstack_dir: Path
    cache_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    node_id: int = 1
    name: str = "kafka"
    voters: str = ""
    cluster_id_file: Path | None = None
    replication: int = 1
    # Lines appended to server.properties (a later line wins: listeners can be added) and
    # options of the storage format (SCRAM users: ``--add-scram``); tests use them.
    extra_properties: str = ""
    format_options: tuple[str, ...] = ()
    jvm_options: tuple[str, ...] = ()  # e.g. system properties (-D...)

    @property
    def daemon(self) -> Daemon:
        return Daemon(self.name, self.host, self.port, self.devstack_dir / self.name)

    @property
    def data_dir(self) -> Path:
        return self.daemon.home / "data"

    def start(self) -> None:
        java = find_java()
        classpath = self.resolve_classpath()
        config = self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(java, classpath, config)
        log4j = RESOURCES / "log4j2.xml"
        self.daemon.spawn(
            [
                java,
                f"-Xmx{self.heap}",
                "-Xms256m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={log4j}",
                *self.jvm_options,
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ]
        )

    def ready(self) -> bool:
        """The broker answers a metadata request and its controller has elected itself."""
        from confluent_kafka.admin import AdminClient

        if not port_open(self.host, self.port):
            return False
        address = self.daemon.address
        try:
            with AdminClient(
                {"bootstrap.servers": address, "socket.timeout.ms": 1000, "log_level": 0}
            ) as admin:
                cluster = admin.describe_cluster(request_timeout=1).result()
        except Exception:
            return False
        return cluster.controller is not None and any(n.id == self.node_id for n in cluster.nodes)

    def resolve_classpath(self) -> str:
        """Resolve the broker's jars with mvn into the cache, once per Kafka version."""
        cp_file = self.cache_dir / f"kafka-{kafka_version()}.classpath"
        if cp_file.exists():
            classpath = cp_file.read_text().strip()
            if all(Path(jar).exists() for jar in classpath.split(":")):
                return classpath
        mvn = shutil.which("mvn")
        if mvn is None:
            raise UserError(
                "Kafka's jars come from Maven Central, but `mvn` is not installed; "
                "install Maven (apt-get install maven) and retry."
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        log = self.cache_dir / "mvn-resolve.log"
        command = [
            mvn,
            "-B",
            "-f",
            str(POM),
            f"-Dmaven.repo.local={self.cache_dir / 'm2'}",
            "dependency:build-classpath",
            f"-Dmdep.outputFile={cp_file}",
        ]
        with log.open("wb") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0 or not cp_file.exists():
            raise UserError(
                f"mvn could not resolve org.apache.kafka:kafka_2.13:{kafka_version()} from Maven "
                f"Central; its log is {log} (last line: {last_line(log)!r})."
            )
        return cp_file.read_text().strip()

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        template = (RESOURCES / "server.properties").read_text()
        config = self.daemon.home / "server.properties"
        quorum = (
            f"controller.quorum.voters={self.voters}"
            if self.voters
            else f"controller.quorum.bootstrap.servers={self.host}:{self.controller_port}"
        )
        fields = {
            "{node_id}": str(self.node_id),
            "{quorum}": quorum,
            "{data_dir}": str(self.data_dir),
            "{controller_port}": str(self.controller_port),
            "{port}": str(self.port),
            "{replication}": str(self.replication),
            "{min_isr}": str(min_insync_replicas(self.replication)),
        }
        for name, value in fields.items():
            template = template.replace(name, value)
        config.write_text(template + self.extra_properties)
        return config

    def _format(self, java: str, classpath: str, config: Path) -> None:
        command = [java, "-cp", classpath, "kafka.tools.StorageTool", "format"]
        if self.voters:  # a static quorum: every node formats with the cluster's one id
            command += [f"--cluster-id={self.cluster_id()}"]
        else:
            command += ["--standalone", f"--cluster-id={new_cluster_id()}"]
        command += [*self.format_options, "-c", str(config)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise UserError(
                f"Formatting Kafka's storage in {self.data_dir} failed: "
                f"{(result.stdout + result.stderr).strip().splitlines()[-1:]}"
            )

    def cluster_id(self) -> str:
        """The cluster's id, made by the first node that formats."""
        assert self.cluster_id_file is not None
        if not self.cluster_id_file.exists():
            self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
            self.cluster_id_file.write_text(new_cluster_id() + "\n")
        return self.cluster_id_file.read_text().strip()


# The broker's own session timeout for KIP-848 groups (server.properties shortens it for the
# single development broker).
PRODUCTION_SESSION = (
    "group.consumer.session.timeout.ms=45000\ngroup.consumer.min.session.timeout.ms=45000\n"
)


def cluster(
    devstack_dir: Path, cache_dir: Path, host: str, port: int, brokers: int
) -> list[KafkaBroker]:
    """The local stack's Kafka: one broker on ``port``, or ``brokers`` nodes of one cluster.

    Node i (from 1) listens on ``port + 2(i-1)``, its controller on the next port; a cluster's
    nodes are named kafka-1, kafka-2, ... and keep their data apart from the single broker's.
    """
    if brokers == 1:
        return [KafkaBroker(devstack_dir, cache_dir, host, port, port + 1)]
    voters = ",".join(f"{i}@{host}:{port + 2 * (i - 1) + 1}" for i in range(1, brokers + 1))
    return [
        KafkaBroker(
            devstack_dir,
            cache_dir,
            host,
            port + 2 * (i - 1),
            port + 2 * (i - 1) + 1,
            heap="512m",
            node_id=i,
            name=f"kafka-{i}",
            voters=voters,
            cluster_id_file=devstack_dir / "kafka-cluster.id",
            replication=min(brokers, 3),
            extra_properties=PRODUCTION_SESSION,
        )
        for i in range(1, brokers + 1)
    ]


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them: URL-safe base64 of a UUID, never starting
    with '-' (the storage tool would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise UserError(
            "Kafka needs Java 17 or newer, but `java` is not on PATH; "
            "install a JDK (apt-get install openjdk-17-jre-headless) and retry."
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', result.stderr)
    if match is None or int(match.group(1)) < 17:
        raise UserError(
            f"Kafka {kafka_version()} needs Java 17 or newer; {java} reports "
            f"{result.stderr.strip().splitlines()[:1]}."
        )
    return java
