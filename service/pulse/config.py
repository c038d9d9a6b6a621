"""Pulse's configuration: defaults < YAML file < ``PULSE_*`` environment variables < flags.

Sections map onto environment variables with one underscore after the section name, so
``PULSE_GRPC_PORT`` sets ``grpc.port`` and ``PULSE_INGEST_MAX_BATCH_ENTRIES`` sets
``ingest.max_batch_entries``. Lists accept comma-separated values. Invalid values stop
start-up with a message naming the key, the value and what is allowed (see ``load``).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "OTHER_VARIABLES",
    "AdminSettings",
    "AuthSettings",
    "BusSettings",
    "ConfigError",
    "FaultSettings",
    "GrpcSettings",
    "IngestSettings",
    "MetricsSettings",
    "MonitorSettings",
    "SensorSettings",
    "Settings",
    "TelemetrySettings",
    "TlsSettings",
    "load",
    "setting_variables",
]

CommaList = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]

# Defaults cover key=value / key: value assignments of common secret names and bearer tokens.
DEFAULT_REDACTION_PATTERNS = [
    r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',;&]+",
    r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*",
]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_POSTGRESQL = ("postgresql://", "postgres://")
_NATS = ("nats://", "tls://")


def _check_scheme(url: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    if url is not None and not url.get_secret_value().startswith(schemes):
        raise ValueError(f"must start with {' or '.join(schemes)}")
    return url


def _url_from(
    url: SecretStr | None, path: Path | None, name: str, schemes: tuple[str, ...]
) -> SecretStr | None:
    """``url``, or the first line of the file at ``path`` when it is given (not both)."""
    if path is None:
        return url
    if url is not None:
        raise ValueError(f"{name} and {name}_file: set one of them")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ValueError(f"{name}_file: cannot read {path}: {exc.strerror}") from None
    first = next((line for line in lines if line), None)
    if first is None:
        raise ValueError(f"{name}_file: {path} is empty")
    try:
        return _check_scheme(SecretStr(first), schemes)
    except ValueError as exc:
        raise ValueError(f"{name}_file: the URL in {path} {exc}") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrpcSettings(_Section):
    host: str = Field("0.0.0.0", description="Address the gRPC server binds.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    max_message_bytes: int = Field(
        1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Largest request or response message; larger requests get RESOURCE_EXHAUSTED.",
    )
    max_concurrent_streams: int = Field(1000, ge=1, description="Per HTTP/2 connection.")
    max_connection_age_s: float = Field(
        300.0, gt=0, description="Connections older than this are closed so streams rotate."
    )
    max_connection_age_grace_s: float = Field(30.0, ge=0)
    keepalive_time_s: float = Field(30.0, gt=0)
    keepalive_timeout_s: float = Field(10.0, gt=0)
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, time streams get to finish before cancellation."
    )


class AdminSettings(_Section):
    host: str | None = Field(
        None, description="Address of the admin HTTP port; default: grpc.host (0.0.0.0)."
    )
    port: int = Field(9464, ge=0, le=65535, description="/metrics, /healthz, /readyz, /faults.")


class AuthSettings(_Section):
    tokens: SecretList = Field(default_factory=list, description="Accepted bearer tokens.")
    api_keys: SecretList = Field(default_factory=list, description="Accepted x-api-key values.")
    tokens_file: Path | None = Field(None, description="File with one bearer token per line.")
    api_keys_file: Path | None = Field(None, description="File with one API key per line.")

    _split = field_validator("tokens", "api_keys", mode="before")(_split_commas)

    @model_validator(mode="after")
    def _read_files(self) -> AuthSettings:
        for field, path in (("tokens", self.tokens_file), ("api_keys", self.api_keys_file)):
            if path is None:
                continue
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ValueError(f"{field}_file: cannot read {path}: {exc.strerror}") from None
            extra = [SecretStr(line.strip()) for line in lines if line.strip()]
            object.__setattr__(self, field, [*getattr(self, field), *extra])
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.api_keys)


class TlsSettings(_Section):
    cert_file: Path | None = Field(None, description="Server certificate (PEM); enables TLS.")
    key_file: Path | None = Field(None, description="Server private key (PEM).")
    client_ca_file: Path | None = Field(
        None, description="CA bundle (PEM); when set, clients must present a certificate (mTLS)."
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be set together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file")
        for name in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class FaultSettings(_Section):
    enabled: bool = Field(False, description="Allow fault injection through the admin port.")


class MetricsSettings(_Section):
    """StreamMetrics: the simulated fleet of sources."""

    hosts: int = Field(4, ge=1, le=1000, description="Simulated hosts in the fleet.")
    regions: CommaList = Field(
        default_factory=lambda: ["eu-west-1", "us-east-1"],
        min_length=1,
        description="Regions the hosts are spread over, round-robin.",
    )
    max_streams: int = Field(2000, ge=1, description="Concurrent StreamMetrics calls.")
    seed: int = Field(0, description="Seed of the simulated signals; same seed, same shapes.")

    _split = field_validator("regions", mode="before")(_split_commas)


class IngestSettings(_Section):
    max_batch_entries: int = Field(1000, ge=1, le=100_000)
    max_message_bytes: int = Field(8192, ge=16, description="Longer messages are truncated.")
    max_attributes: int = Field(32, ge=0, description="Entries with more attributes are rejected.")
    max_attribute_key_bytes: int = Field(
        128, ge=1, description="Entries with a longer attribute key are rejected."
    )
    max_attribute_value_bytes: int = Field(
        256, ge=16, description="Longer attribute values are truncated."
    )
    max_source_bytes: int = Field(
        256, ge=1, description="Entries with a longer source are rejected."
    )
    max_task_id_bytes: int = Field(
        256, ge=1, description="Entries with a longer task_id are rejected."
    )
    max_batch_id_bytes: int = Field(
        256, ge=1, description="A longer batch_id ends the call with INVALID_ARGUMENT."
    )
    idle_timeout_s: float = Field(
        60.0, gt=0, description="An Ingest call that sends nothing this long is ended."
    )
    redaction_patterns: CommaList = Field(
        default_factory=lambda: list(DEFAULT_REDACTION_PATTERNS),
        description="RE2 patterns; group 1, when present, is kept and the rest replaced.",
    )
    global_rate: float = Field(20_000.0, gt=0, description="Entries/s over all sources.")
    global_burst: float = Field(40_000.0, gt=0)
    source_rate: float = Field(2_000.0, gt=0, description="Entries/s per source.")
    source_burst: float = Field(4_000.0, gt=0)
    task_rate: float = Field(500.0, gt=0, description="Entries/s per task id.")
    task_burst: float = Field(1_000.0, gt=0)
    max_tracked_keys: int = Field(
        10_000, ge=1, description="Per-source and per-task buckets kept; least recent evicted."
    )
    max_tracked_key_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Bytes of source and task keys kept, per level."
    )
    dedup_window_s: float = Field(300.0, ge=0, description="Batch ids remembered this long.")
    dedup_max_batches: int = Field(100_000, ge=1, description="Batch ids remembered at most.")
    dedup_max_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Bytes of batch ids remembered at most."
    )
    max_streams: int = Field(64, ge=1, description="Concurrent Ingest calls.")
    emit_log_records: bool = Field(
        True,
        description="Forward accepted entries to the logs backend as OTLP log records (when "
        "telemetry.enabled; to the OTEL_EXPORTER_OTLP_* endpoint).",
    )
    forward_queue_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of accepted entries waiting to be forwarded; beyond, a batch is "
        "dropped and counted (with a log bus, left on the bus until there is room).",
    )

    _split = field_validator("redaction_patterns", mode="before")(_split_commas)

    @property
    def max_entry_bytes(self) -> int:
        """The largest encoded size of an accepted entry: every field at its limit, with
        protobuf framing, times, ids, severity and sequence."""
        fixed = self.max_message_bytes + self.max_source_bytes + self.max_task_id_bytes + 112
        per_attribute = self.max_attribute_key_bytes + self.max_attribute_value_bytes + 16
        return fixed + self.max_attributes * per_attribute

    @field_validator("redaction_patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        from pulse.log_service.redaction import InvalidPattern, compile_patterns

        try:
            compile_patterns(patterns)
        except InvalidPattern as exc:
            raise ValueError(str(exc)) from None
        return patterns


class MonitorSettings(_Section):
    buffer_entries: int = Field(10_000, ge=1, description="Ring buffer of recent entries.")
    buffer_bytes: int = Field(
        16 * 1024 * 1024, ge=1024 * 1024, description="Bytes the ring buffer holds at most."
    )
    max_subscribers: int = Field(100, ge=1, description="Concurrent Monitor calls.")
    subscriber_queue: int = Field(
        2_000, ge=1, description="Entries queued per subscriber; the oldest are dropped."
    )
    subscriber_queue_bytes: int = Field(
        256 * 1024, ge=64 * 1024, description="Bytes queued per subscriber; the oldest dropped."
    )
    max_response_entries: int = Field(
        1000,
        ge=1,
        description="Entries per MonitorResponse (a subscriber behind gets more at once).",
    )
    response_linger_s: float = Field(
        0.005,
        ge=0,
        le=0.1,
        description="A response waits this long for more entries before it is written, unless "
        "full: fewer, larger writes under load, at most this much more delivery lag.",
    )
    max_response_bytes: int = Field(
        128 * 1024,
        ge=64 * 1024,
        description="Bytes per MonitorResponse; below grpc.max_message_bytes.",
    )
    max_backlog: int = Field(1_000, ge=0, description="Largest backlog a filter may ask.")
    max_backlog_scan: int = Field(
        5_000, ge=1, description="Newest buffered entries a filter's backlog is looked for in."
    )
    backlog_scan_rate: int = Field(
        50_000,
        ge=1,
        description="Buffered entries all filters together may look through per second for "
        "their backlog; beyond it a backlog is looked for among fewer entries.",
    )
    max_pattern_bytes: int = Field(1024, ge=1)
    max_filter_values: int = Field(100, ge=1, description="Sources, task ids or attributes.")
    max_filter_value_bytes: int = Field(
        256, ge=1, description="Bytes of one source, task id, attribute key or value in a filter."
    )
    filter_update_rate: float = Field(
        2.0, gt=0, description="Filter messages per second one Monitor call may send."
    )
    filter_update_burst: int = Field(
        5, ge=1, description="Filter messages a Monitor call may send at once."
    )
    first_filter_timeout_s: float = Field(
        30.0, gt=0, description="A Monitor call that sends no filter this long is ended."
    )


class SensorSettings(_Section):
    database: Path | None = Field(None, description="SQLite file; default <data_dir>/sensors.db.")
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL shared by every replica (postgresql://user:password@host/db); "
        "unset: SQLite in the data directory, for one process.",
    )
    database_url_file: Path | None = Field(
        None, description="File whose first line is database_url (a mounted Secret)."
    )
    database_pool_size: int = Field(10, ge=1, le=100, description="Connections per replica.")
    database_timeout_s: float = Field(
        5.0, gt=0, description="A database call that takes longer fails with UNAVAILABLE."
    )
    window: int = Field(10, ge=1, le=10_000, description="Readings a summary covers.")
    min_temperature: float = Field(-90.0, description="Lowest plausible reading (°C).")
    max_temperature: float = Field(150.0, description="Highest plausible reading (°C).")
    max_watchers: int = Field(100, ge=1, description="Concurrent WatchSummaries calls.")
    max_record_streams: int = Field(16, ge=1, description="Concurrent Record calls.")
    max_labelled_sensors: int = Field(
        50, ge=0, description="Sensors with their own metric series; the rest share 'other'."
    )

    @field_validator("database_url")
    @classmethod
    def _postgresql(cls, url: SecretStr | None) -> SecretStr | None:
        return _check_scheme(url, _POSTGRESQL)

    @model_validator(mode="after")
    def _database_url_file(self) -> SensorSettings:
        url = _url_from(self.database_url, self.database_url_file, "database_url", _POSTGRESQL)
        object.__setattr__(self, "database_url", url)
        return self

    @model_validator(mode="after")
    def _range(self) -> SensorSettings:
        if not (math.isfinite(self.min_temperature) and math.isfinite(self.max_temperature)):
            raise ValueError("min_temperature and max_temperature must be finite")
        if self.min_temperature >= self.max_temperature:
            raise ValueError("min_temperature must be below max_temperature")
        return self


class BusSettings(_Section):
    """The log bus: the in-process ring of one process, or NATS JetStream for several."""

    url: SecretStr | None = Field(
        None,
        description="NATS server with JetStream shared by every replica (nats://host:4222); "
        "unset: the in-process ring, for one process.",
    )
    stream: str = Field(
        "pulse-logs", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="JetStream stream name."
    )
    subject: str = Field(
        "pulse.logs", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", description="Its subject."
    )
    max_age_s: float = Field(86_400.0, gt=0, description="Batches older than this are removed.")
    max_bytes: int = Field(
        1024**3, ge=1024**2, description="The stream's size; the oldest batches go first."
    )
    url_file: Path | None = Field(
        None, description="File whose first line is url (a mounted Secret)."
    )
    replicas: int = Field(1, ge=1, le=5, description="Copies of the stream in a NATS cluster.")
    timeout_s: float = Field(
        5.0, gt=0, description="A publish not acknowledged this fast fails with UNAVAILABLE."
    )

    @field_validator("url")
    @classmethod
    def _nats(cls, url: SecretStr | None) -> SecretStr | None:
        return _check_scheme(url, _NATS)

    @model_validator(mode="after")
    def _url_file(self) -> BusSettings:
        object.__setattr__(self, "url", _url_from(self.url, self.url_file, "url", _NATS))
        return self


class TelemetrySettings(_Section):
    enabled: bool = Field(True, description="Export traces, metrics and logs over OTLP.")
    service_name: str = Field("pulse", min_length=1)
    environment: str = Field("development", description="deployment.environment.name")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    stream_tick_s: float = Field(
        10.0, gt=0, description="Long streams emit a summarising child span this often."
    )


class Settings(BaseSettings):
    """The effective configuration of ``pulse serve``."""

    model_config = SettingsConfigDict(
        env_prefix="PULSE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(Path(".data"), description="Persistent data (sensor database).")
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    sensors: SensorSettings = Field(default_factory=SensorSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get("path")
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def sensor_database(self) -> Path:
        return self.sensors.database or self.data_dir / "sensors.db"

    @model_validator(mode="after")
    def _responses_fit(self) -> Settings:
        # A MonitorResponse carries entries of at most max_response_bytes plus its own framing.
        if self.monitor.max_response_bytes + 1024 > self.grpc.max_message_bytes:
            raise ValueError(
                f"monitor.max_response_bytes ({self.monitor.max_response_bytes}) must be at least "
                f"1024 below grpc.max_message_bytes ({self.grpc.max_message_bytes})"
            )
        # No entry may be accepted that cannot be delivered to Monitor.
        if self.ingest.max_entry_bytes > self.monitor.max_response_bytes:
            raise ValueError(
                f"an entry at the ingest limits takes {self.ingest.max_entry_bytes} bytes, more "
                f"than monitor.max_response_bytes ({self.monitor.max_response_bytes}): lower "
                "ingest.max_message_bytes, max_attributes or max_attribute_value_bytes"
            )
        return self

    @model_validator(mode="after")
    def _bus_keeps_the_window(self) -> Settings:
        # JetStream refuses a duplicate window longer than the stream keeps messages.
        if self.bus.url is not None and self.ingest.dedup_window_s > self.bus.max_age_s:
            raise ValueError(
                f"ingest.dedup_window_s ({self.ingest.dedup_window_s:g}) must not exceed "
                f"bus.max_age_s ({self.bus.max_age_s:g}): the bus forgets a batch id no sooner "
                "than the batch"
            )
        return self


# ``PULSE_*`` variables that are not settings of ``pulse serve``, and what reads them. A name
# ending in "_" stands for every variable that starts with it. Every other ``PULSE_*`` variable
# stops ``pulse serve`` (a typo such as PULSE_TOKENS must not start the server without auth).
OTHER_VARIABLES: dict[str, str] = {
    "PULSE_CONFIG": "the YAML configuration file of pulse serve",
    "PULSE_TARGET": "client commands and the load generator: the server's host:port",
    "PULSE_TOKEN": "client commands and the load generator: bearer token",
    "PULSE_API_KEY": "client commands and the load generator: API key",
    "PULSE_LOADGEN_": "the load generator's flags",
    "PULSE_STACK_": "the local stack (deploy/local)",
    "PULSE_CLUSTER_": "the local control plane (deploy/local)",
    "PULSE_NODE_": "the local node (deploy/local/node.py): its state dir and machine-wide lock",
    "PULSE_IMAGES_DIR": "where deploy/local/images.sh writes image archives",
    "PULSE_ENGINES_": "the shared engines of several replicas (deploy/local)",
    "PULSE_TOOLS_DIR": "where deploy/local/build.sh keeps upstream binaries",
    "PULSE_CACHE_DIR": "deploy/local/build.sh's cache",
    "PULSE_ALERT_WEBHOOK_BASE": "the local stack's Alertmanager receivers",
    "PULSE_CHART": "deploy/helm/check.sh: the chart it checks",
    "PULSE_DOCKERFILE": "deploy/helm/check.sh: the Dockerfile it checks",
    "PULSE_CHROMIUM": "tests/browser: the Chromium binary",
    "PULSE_TEST_ARTIFACTS": "tests/browser: where screenshots are kept",
    "PULSE_PROMETHEUS_URL": "Grafana datasource provisioning",
    "PULSE_LOGS_URL": "Grafana datasource provisioning",
    "PULSE_LOGS_DATASOURCE_UID": "Grafana datasource provisioning",
    "PULSE_LOGS_SERVICE_FIELD": "Grafana datasource provisioning",
    "PULSE_JAEGER_URL": "Grafana datasource provisioning",
    "PULSE_ALERTMANAGER_URL": "Grafana datasource provisioning",
}


def setting_variables() -> dict[str, str]:
    """Every ``PULSE_*`` variable that sets a key: variable -> dotted key."""
    names = {}
    for field, info in Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for key in section.model_fields:
                names[f"PULSE_{field}_{key}".upper()] = f"{field}.{key}"
        else:
            names[f"PULSE_{field}".upper()] = field
    return names


def _is_other(name: str) -> bool:
    return any(
        name.startswith(other) if other.endswith("_") else name == other
        for other in OTHER_VARIABLES
    )


# Kubernetes gives every container variables for each Service of its namespace (service links):
# a Service named pulse-collector yields <NAME>_SERVICE_HOST, <NAME>_PORT and more, NAME being
# the Service's name in capitals with underscores. Such a variable is recognised by its name and
# by a value only the kubelet writes, so a mistyped port setting (…_PORT=9464) still stops
# start-up.
def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_link_url(value: str) -> bool:
    scheme, _, address = value.partition("://")
    host, _, port = address.rpartition(":")
    return scheme in _LINK_PROTOCOLS and _is_address(host.strip("[]")) and port.isdigit()


_LINK_PROTOCOLS = ("tcp", "udp", "sctp")
_LINK_PORT = r"_PORT_\d+_(?:TCP|UDP|SCTP)"  # one port of the Service: _PORT_4317_TCP
_SERVICE_LINKS = tuple(
    (re.compile(rf"PULSE(?:_[A-Z0-9_]+)?{suffix}"), accepts)
    for suffix, accepts in (
        ("_SERVICE_HOST", _is_address),
        ("_SERVICE_PORT(?:_[A-Z0-9_]+)?", str.isdigit),
        ("_PORT", _is_link_url),
        (_LINK_PORT, _is_link_url),
        (f"{_LINK_PORT}_PROTO", _LINK_PROTOCOLS.__contains__),
        (f"{_LINK_PORT}_PORT", str.isdigit),
        (f"{_LINK_PORT}_ADDR", _is_address),
    )
)


def _is_service_link(name: str, value: str) -> bool:
    # A name can read several ways (a Service named pulse-service), so any reading will do.
    return any(shape.fullmatch(name) and accepts(value) for shape, accepts in _SERVICE_LINKS)


def _check_variables(environ: dict[str, str]) -> None:
    known = setting_variables()
    unknown = sorted(
        name
        for name, value in environ.items()
        if name.startswith("PULSE_")
        and name not in known
        and not _is_other(name)
        and not _is_service_link(name, value)
    )
    if not unknown:
        return
    lines = ["unknown environment variables (a typo would silently change nothing):"]
    for name in unknown:
        # The server reads settings, so the nearest setting is the likely intent.
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or (
            difflib.get_close_matches(name, OTHER_VARIABLES, n=1, cutoff=0.6)
        )
        hint = f"; did you mean {near[0]}?" if near else ""
        lines.append(f"  {name}: not a Pulse setting{hint}")
    lines.append("  settings: PULSE_<SECTION>_<KEY>, see `pulse config show`")
    raise ConfigError("\n".join(lines))


_CONFIG_FILE: dict[str, Path | None] = {}


class ConfigError(Exception):
    """A configuration that cannot start Pulse; the message names each bad key."""


def load(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the effective settings; raise ``ConfigError`` naming every invalid key.

    ``config_file`` falls back to ``PULSE_CONFIG``; ``overrides`` (from flags) win over all,
    given as nested dicts, e.g. ``{"grpc": {"port": 0}}``.
    """
    _check_variables(dict(os.environ))
    path = config_file or os.environ.get("PULSE_CONFIG") or None
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file: no such file: {path}")
        _check_yaml(path)
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _CONFIG_FILE.pop("path", None)


def _check_yaml(path: Path) -> None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: must be a mapping of sections, got {type(data).__name__}"
        )


def _describe(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(settings)"
        env = "PULSE_" + "_".join(str(p) for p in error["loc"][:2]).upper() if error["loc"] else ""
        value = error.get("input")
        shown = "***" if _is_secret_key(key) else repr(value)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error":
            message = f"allowed: {error.get('ctx', {}).get('expected', '')}"
        lines.append(f"  {key} (env {env}) = {shown}: {message}")
    return "\n".join(lines)


# URLs of the shared engines may carry a password.
_SECRET_KEYS = {"bus", "bus.url", "sensors", "sensors.database_url"}


def _is_secret_key(key: str) -> bool:
    return key == "auth" or key.startswith("auth.") or key == "(settings)" or key in _SECRET_KEYS
