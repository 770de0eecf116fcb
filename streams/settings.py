"""One typed settings object, built from ``STREAMGAUGE_*`` variables and command-line flags.

Every setting is declared once here, with its variable name and a one-line description;
``streamgauge --help-settings`` and docs/configuration.md are generated from this table.
Code receives a ``Settings`` instance; nothing below the CLI reads the environment.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from streams.errors import UserError
from streams.logrepeats import quiet_repeats

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shipped Avro schemas and ClickHouse migrations: package data (streams/schemas is a link to
# the checkout's schemas/, copied into the wheel), so an installed package finds them too.
SCHEMAS = (Path(__file__).parent / "schemas").resolve()


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _secret(default: Any, doc: str) -> Any:
    """A setting that holds a password: left out of ``repr`` (logs, tracebacks)."""
    return field(default=default, repr=False, metadata={"doc": doc})


def redacted(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class Settings:
    """Configuration of every streamgauge component; defaults point at the local stack."""

    log_level: str = _setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")

    # Kafka
    kafka_bootstrap_servers: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers.")
    kafka_security_protocol: str = _setting(
        "PLAINTEXT", "Kafka security.protocol (PLAINTEXT, SSL, SASL_SSL, SASL_PLAINTEXT)."
    )
    kafka_ssl_ca_file: str = _setting(
        "", "CA certificate file (PEM) that signed the brokers' certificates; empty: the system's."
    )
    kafka_ssl_certificate_file: str = _setting(
        "", "Client certificate (PEM) for brokers that authenticate clients by TLS (mTLS)."
    )
    kafka_ssl_key_file: str = _setting("", "Private key (PEM) of the client certificate.")
    kafka_ssl_key_password: str = _secret("", "Password of the client's private key, if any.")
    kafka_sasl_mechanism: str = _setting(
        "", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER."
    )
    kafka_sasl_username: str = _setting("", "Kafka SASL user name (PLAIN, SCRAM).")
    kafka_sasl_password: str = _secret("", "Kafka SASL password (PLAIN, SCRAM).")
    kafka_oauthbearer_token_url: str = _setting(
        "", "OAUTHBEARER: the OIDC token endpoint the client gets its tokens from."
    )
    kafka_oauthbearer_client_id: str = _setting("", "OAUTHBEARER: the OIDC client id.")
    kafka_oauthbearer_client_secret: str = _secret("", "OAUTHBEARER: the OIDC client secret.")
    kafka_oauthbearer_scope: str = _setting("", "OAUTHBEARER: the scope asked for, if any.")
    topic: str = _setting("measurements", "Topic the devices publish measurements to.")
    dlq_topic: str = _setting("measurements.dlq", "Dead-letter topic for rejected messages.")
    consumer_group: str = _setting("streamgauge-ingest", "Consumer group of the workers.")
    topic_partitions: int = _setting(6, "Partitions of the measurements topic (topics create).")
    topic_replication: int = _setting(1, "Replication factor of both topics (topics create).")
    topic_retention_hours: float = _setting(
        168.0, "Retention of the measurements topic in hours (topics create)."
    )
    kafka_group_protocol: str = _setting(
        "consumer", "Consumer group protocol: consumer (KIP-848, Kafka 4) or classic."
    )
    schemas_dir: Path = _setting(SCHEMAS / "avro", "Every shipped Avro schema.")
    schema_registry_url: str = _secret(
        "", "Schema registry URL; when set, messages use Confluent framing (magic byte + id)."
    )
    schema_registry_register: bool = _setting(
        True,
        "Producers register the shipped schema versions (needs write access to the registry); "
        "false: they only look their ids up (the registry must hold them already).",
    )
    schema_registry_username: str = _setting("", "Schema registry basic-auth user name.")
    schema_registry_password: str = _secret("", "Schema registry basic-auth password.")
    schema_registry_ca_file: str = _setting(
        "", "CA certificate file (PEM) that signed an https registry's certificate."
    )

    # ClickHouse
    clickhouse_host: str = _setting("127.0.0.1", "ClickHouse HTTP host.")
    clickhouse_port: int = _setting(8123, "ClickHouse HTTP port.")
    clickhouse_user: str = _setting("default", "ClickHouse user.")
    clickhouse_password: str = _secret("", "ClickHouse password.")
    clickhouse_migrate_password: str = _secret(
        "", "`migrate users`: the password of user streamgauge_migrate (unset: no such user)."
    )
    clickhouse_ingest_password: str = _secret(
        "", "`migrate users`: the password of user streamgauge_ingest (unset: no such user)."
    )
    clickhouse_api_password: str = _secret(
        "", "`migrate users`: the password of user streamgauge_api (unset: no such user)."
    )
    clickhouse_database: str = _setting("streamgauge", "ClickHouse database of the tables.")
    clickhouse_secure: bool = _setting(False, "Use HTTPS to reach ClickHouse.")
    clickhouse_ca_file: str = _setting(
        "",
        "CA certificate file (PEM) that signed ClickHouse's HTTPS certificate; "
        "empty: the system's.",
    )
    clickhouse_cluster: str = _setting(
        "", "ClickHouse cluster name; when set, migrations render ON CLUSTER + Replicated engines."
    )

    # Workers
    worker_processes: int = _setting(2, "Worker processes started by `streamgauge worker`.")
    worker_index: int = _setting(0, "Index of this worker process (set by the supervisor).")
    batch_max_rows: int = _setting(100_000, "A batch flushes when it holds this many readings.")
    batch_backlog_max_rows: int = _setting(
        400_000,
        "A batch grows on to this many readings while Kafka already holds enough of its "
        "partition to fill it (fewer, bigger inserts drain a backlog faster), and one insert "
        "of caught-up partitions' batches holds up to this many; memory: docs/delivery.md, "
        "Bounds.",
    )
    batch_max_bytes: int = _setting(16 * 2**20, "A batch flushes at this many message bytes.")
    batch_max_seconds: float = _setting(
        5.0, "A batch flushes at the latest this long after its first message."
    )
    batch_linger_seconds: float = _setting(
        0.25, "A batch of a caught-up partition flushes once it is this old (low delay)."
    )
    max_inserts_in_flight: int = _setting(4, "Inserts one worker process runs at once.")
    max_partitions_per_insert: int = _setting(
        64,
        "Caught-up partitions whose batches one insert carries (1: an insert per partition); "
        "at most 150, for the intents to fit Kafka's commit metadata.",
    )
    insert_format: str = _setting(
        "avro",
        "How workers insert: `avro` (ClickHouse parses the decoded and validated message bodies "
        "into readings_input, migration 0007) or `native` (the worker builds the rows).",
    )
    fast_check: bool = _setting(
        True,
        "Avro path: accept plain valid messages with the compiled check (streams/_fastcheck.c) "
        "where it was built; every other message, and every dead letter, goes the Python way.",
    )
    insert_timeout_seconds: float = _setting(
        30.0, "An insert running longer is cancelled on the server and retried."
    )
    max_future_seconds: float = _setting(
        3600.0, "Readings with an event time further in the future are dead-lettered."
    )
    max_message_bytes: int = _setting(64 * 1024, "Larger messages are dead-lettered.")
    max_readings_per_message: int = _setting(
        1000, "Messages with more readings are dead-lettered (too_many_readings)."
    )
    dlq_max_message_bytes: int = _setting(
        4 * 2**20,
        "Largest dead letter the workers produce, and the dead-letter topic's max.message.bytes "
        "(topics create); larger ones are kept in ClickHouse's dead_letters table.",
    )
    dedup_horizon_seconds: float = _setting(
        900.0,
        "Longest time before a batch is inserted again (a session timeout plus a restart); "
        "the worker checks at start that ClickHouse's deduplication window covers it.",
    )
    resend_devices: int = _setting(
        200_000, "Devices whose highest seq a worker process keeps in memory (resend checks)."
    )
    worker_metrics_host: str = _setting("127.0.0.1", "Listen address of the workers' /metrics.")
    worker_metrics_port: int = _setting(
        9309, "First port of the workers' /metrics; process i listens on port + i."
    )

    # Lag exporter
    lag_exporter_host: str = _setting("127.0.0.1", "Lag exporter listen address.")
    lag_exporter_port: int = _setting(9308, "Lag exporter port (/metrics, /status).")
    lag_groups: str = _setting(
        "streamgauge-ingest", "Comma-separated consumer groups the lag exporter reports."
    )
    lag_refresh_seconds: float = _setting(5.0, "Seconds between two lag refreshes.")
    lag_stop_after_seconds: float = _setting(
        120.0, "A group with lag and no commit for this long is reported STOP."
    )
    lag_window_refreshes: int = _setting(
        12, "Refreshes in the consumer-status window (WARN and STALL need a full window)."
    )
    lag_slo_seconds: float = _setting(
        60.0, "Lag in seconds above which data counts as stale (API and alerts)."
    )

    # API
    api_host: str = _setting("127.0.0.1", "Read API listen address.")
    api_port: int = _setting(8080, "Read API port.")
    api_keys: str = _setting(
        "", "Comma-separated API keys as `scope1+scope2:sha256hex` (`streamgauge api hash-key`)."
    )
    api_keys_file: str = _setting(
        "",
        "A file of further key entries, one per line (a mounted Secret; "
        "`streamgauge api hash-key --keep-in DIR` writes DIR/entries).",
    )
    api_auth: bool = _setting(
        True,
        "The API requires keys and refuses to start without any; false serves every route "
        "without authentication (`streamgauge api --no-auth`).",
    )
    api_lag_url: str = _setting(
        "http://127.0.0.1:9308/status", "Where the API reads lag for freshness."
    )
    api_query_timeout_seconds: float = _setting(
        5.0, "A read API query running longer is cancelled and answered with 504."
    )
    api_cache_seconds: float = _setting(
        2.0, "How long the read API reuses an answer (absorbs dashboard polling); 0 disables."
    )
    api_partition_window_seconds: float = _setting(
        600.0,
        "A device's freshness counts each partition its readings arrived on within this long "
        "of its newest one, and partitions added to the topic up to this long before that "
        "(keep it above the producers' metadata refresh, 5 min by default; docs/api.md).",
    )

    # Migrations and their staging gate (docs/migrations.md)
    migrations_dir: Path = _setting(SCHEMAS / "clickhouse", "Versioned ClickHouse migrations.")
    migrations_lock_wait_seconds: float = _setting(
        60.0, "`migrate up` waits this long for another runner's migration lock, then fails."
    )
    migrations_staging_url: str = _secret(
        "",
        "Staging server of `migrate check` (http[s]://user:password@host:port); "
        "empty: scratch databases on the target server.",
    )
    migrations_check_on_target: bool = _setting(
        False,
        "Without a staging URL, `migrate check` loads its synthetic workload on the target "
        "server itself only when this is true; otherwise it refuses.",
    )
    migrations_check_threshold: float = _setting(
        0.2, "`migrate check` fails when a figure gets worse by more than this fraction."
    )
    migrations_check_devices: int = _setting(
        500, "`migrate check`: devices in the synthetic data set."
    )
    migrations_check_metrics: int = _setting(
        4, "`migrate check`: metrics per device in the synthetic data set."
    )
    migrations_check_messages: int = _setting(
        200, "`migrate check`: messages per device in the synthetic data set, 10 s apart."
    )
    migrations_check_sample_rows: int = _setting(
        0, "`migrate check`: recent rows of the target's readings copied into staging too."
    )
    migrations_check_batch_rows: int = _setting(
        20_000, "`migrate check`: readings per batch of the insert workload."
    )
    migrations_check_batches: int = _setting(
        5, "`migrate check`: insert batches per round of the workload."
    )
    migrations_check_rounds: int = _setting(
        3, "`migrate check`: rounds of the workload; figures are medians over rounds."
    )
    migrations_check_repeats: int = _setting(
        20, "`migrate check`: runs of each query per round (its p95 is over these)."
    )
    migrations_check_report: Path = _setting(
        Path("migrate-check.json"), "`migrate check` writes its JSON report here."
    )

    # Local stack
    devstack_dir: Path = _setting(REPO_ROOT / ".devstack", "Data and logs of the local stack.")
    cache_dir: Path = _setting(REPO_ROOT / ".cache", "Download caches (Maven repository).")
    devstack_registry_port: int = _setting(
        8081, "Port of the local stack's schema registry (127.0.0.1; `streamgauge dev up`)."
    )
    devstack_brokers: int = _setting(
        1,
        "Kafka brokers of the local stack: 1, or 3 for a replicated cluster on the bootstrap "
        "port and the next even ports (`streamgauge dev up --brokers 3`).",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``STREAMGAUGE_*`` variables; non-None overrides (flags) win."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = env_name(f.name)
            if name in environ:
                values[f.name] = _parse(name, environ[name], hints[f.name])
        unknown = sorted(k for k in environ if k.startswith("STREAMGAUGE_") and k not in _ENV_NAMES)
        if unknown:
            raise UserError(
                f"Unknown setting {unknown[0]}; `streamgauge --help-settings` lists them all."
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def isolated(self, name: str, **overrides: Any) -> Settings:
        """These settings for a pipeline of its own, named ``name``: its topic, dead-letter
        topic, consumer group (the one the lag exporter watches too) and database."""
        return dataclasses.replace(
            self,
            topic=name,
            dlq_topic=f"{name}.dlq",
            consumer_group=name,
            lag_groups=name,
            clickhouse_database=name.replace("-", "_"),
            **overrides,
        )

    def to_env(self) -> dict[str, str]:
        """These settings as ``STREAMGAUGE_*`` variables (how the supervisor hands them down)."""
        rendered = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            rendered[env_name(f.name)] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return rendered

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka client properties shared by every Kafka client the project creates."""
        config: dict[str, Any] = {
            "logger": quiet_repeats(logging.getLogger("streams.kafka")),
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        files = {
            "ssl.ca.location": ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
            "ssl.certificate.location": (
                "KAFKA_SSL_CERTIFICATE_FILE",
                self.kafka_ssl_certificate_file,
            ),
            "ssl.key.location": ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
        }
        for name, (setting, path) in files.items():
            if path:
                if not Path(path).is_file():
                    raise UserError(f"STREAMGAUGE_{setting} names {path}, which is not a file.")
                config[name] = path
        if self.kafka_ssl_key_password:
            config["ssl.key.password"] = self.kafka_ssl_key_password
        mechanism = self.kafka_sasl_mechanism.upper()
        if mechanism == "OAUTHBEARER":
            if not (self.kafka_oauthbearer_token_url and self.kafka_oauthbearer_client_id):
                raise UserError(
                    "STREAMGAUGE_KAFKA_SASL_MECHANISM=OAUTHBEARER needs "
                    "STREAMGAUGE_KAFKA_OAUTHBEARER_TOKEN_URL and _CLIENT_ID (and _CLIENT_SECRET)."
                )
            config["sasl.mechanism"] = mechanism
            config["sasl.oauthbearer.method"] = "oidc"
            config["sasl.oauthbearer.token.endpoint.url"] = self.kafka_oauthbearer_token_url
            config["sasl.oauthbearer.client.id"] = self.kafka_oauthbearer_client_id
            config["sasl.oauthbearer.client.secret"] = self.kafka_oauthbearer_client_secret
            if self.kafka_oauthbearer_scope:
                config["sasl.oauthbearer.scope"] = self.kafka_oauthbearer_scope
        elif mechanism:
            config["sasl.mechanism"] = mechanism
            config["sasl.username"] = self.kafka_sasl_username
            config["sasl.password"] = self.kafka_sasl_password
        return config


def env_name(field_name: str) -> str:
    return "STREAMGAUGE_" + field_name.upper()


_ENV_NAMES = {env_name(f.name) for f in dataclasses.fields(Settings)}


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            return _parse_bool(raw)
        if kind is int:
            return int(raw.replace("_", ""))
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
        if kind is Path:
            return Path(raw).expanduser()
        return raw
    except ValueError:
        kind_name = getattr(kind, "__name__", str(kind))
        raise UserError(f"{name} must be a {kind_name}, got {raw!r}.") from None


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(raw)


def markdown() -> str:
    """docs/configuration.md: every setting, its default and meaning."""
    lines = [
        "# Configuration",
        "",
        "Every setting is a `STREAMGAUGE_*` environment variable; command-line flags override",
        "them. Defaults point at the local stack. Generated from streams/settings.py by",
        "`streamgauge --help-settings --markdown > docs/configuration.md`; a test keeps it true.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, default, doc in describe():
        lines.append(
            f"| `{name}` | `{default}` | {doc} |" if default else f"| `{name}` | | {doc} |"
        )
    return "\n".join(lines) + "\n"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, Path):
            default = (
                str(default.relative_to(REPO_ROOT))
                if default.is_relative_to(REPO_ROOT)
                else str(default)
            )
        rows.append((env_name(f.name), str(default), str(f.metadata["doc"])))
    return rows
