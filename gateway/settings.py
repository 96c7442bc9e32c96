"""Typed settings: one TOML file (``HOOKLINE_CONFIG``) plus ``HOOKLINE_*`` overrides.

Secrets may be given inline (``X = "..."``), from the environment (``X_env = "VAR"``) or
from a file (``X_file = "/path"``). Any problem stops start-up with a ``ConfigError`` that
names the file, the source or sink, and the field: never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import msgspec

from gateway.proxies import TrustedProxies
from handlers.base import SourceSpec
from handlers.events import EventType
from handlers.registry import PROVIDERS, UnknownProviderError, get_adapter

__all__ = [
    "AdminSettings",
    "ConfigError",
    "DatabaseSettings",
    "DeliverySettings",
    "HttpClientSettings",
    "IngestSettings",
    "LoggingSettings",
    "ReadSideSettings",
    "ServerSettings",
    "Settings",
    "SinkSettings",
    "SnsSettings",
    "SourceSettings",
    "StorageSettings",
    "SuppressionSettings",
    "load_settings",
]

#: fields that may be given as X_env / X_file, wherever they appear
SECRET_FIELDS = frozenset(
    {"signing_key", "basic_auth", "bearer_token", "secret", "token", "url", "dsn", "password"}
)


class ConfigError(Exception):
    """A configuration problem, phrased for the operator."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    #: address the HTTP server listens on
    host: str = "127.0.0.1"
    #: port the HTTP server listens on
    port: int = 8000
    #: run the outbox workers inside ``hookline serve`` (``hookline worker`` runs them alone)
    workers: bool = True
    #: after SIGTERM, keep answering (webhooks 503 + Retry-After, /readyz 503) this long
    #: before closing the listener, so that load balancers stop sending here first
    shutdown_delay_seconds: float = 0.0
    #: seconds a client has to send a complete request head (then 408 and close; slowloris)
    header_read_timeout_seconds: float = 5.0
    #: seconds an idle keep-alive connection is kept open between requests
    keep_alive_timeout_seconds: float = 5.0
    #: seconds a client has to send a whole webhook body once its headers are in (then 408)
    body_read_timeout_seconds: float = 30.0
    #: peers whose X-Forwarded-Proto/-Host are believed (``gateway.proxies``): IPs,
    #: CIDR networks, ``*``; comma-separated
    forwarded_allow_ips: str = "127.0.0.1"


class DatabaseSettings(_Section):
    #: absent: an embedded PostgreSQL under ``storage.data_dir``
    url: str | None = None
    #: connections the pool keeps open
    pool_min_size: int = 2
    #: connections the pool opens at most
    pool_max_size: int = 10
    #: seconds to open one connection
    connect_timeout_seconds: float = 5.0
    #: seconds one statement may take
    command_timeout_seconds: float = 10.0
    #: when PostgreSQL is unreachable at start, retry with backoff up to this interval
    connect_retry_max_seconds: float = 30.0
    #: the first of those retries comes this soon; each next one waits twice as long
    connect_retry_first_seconds: float = 0.5
    #: how often a connected process checks that PostgreSQL still answers
    ping_interval_seconds: float = 5.0


class StorageSettings(_Section):
    #: the embedded PostgreSQL, the spool and the nonce journal live here
    data_dir: str = ".hookline"
    #: spool acknowledged webhooks to local disk (fsync'd) while PostgreSQL is down; off: 503
    spool_enabled: bool = True
    #: the spool's size limit (a full spool with the database down: 503)
    spool_max_bytes: int = 1024 * 1024 * 1024
    #: size of one spool segment file
    spool_segment_bytes: int = 16 * 1024 * 1024
    #: daily event partitions older than this are dropped (0: kept forever)
    retention_days: int = 90
    #: storage failures in a row that open the storage breaker (then: the spool)
    breaker_fail_max: int = 3
    #: seconds the storage breaker stays open before one trial write
    breaker_reset_seconds: float = 5.0
    #: /readyz says not-ready when the database answers but the spool has held records
    #: this long without the drainer moving any (stuck; see docs/quarantine.md)
    spool_stuck_seconds: float = 600.0
    #: at shutdown (SIGTERM), how long to keep draining the spool into PostgreSQL
    shutdown_drain_seconds: float = 15.0
    #: spooled events the drainer writes to PostgreSQL per transaction
    drain_chunk_events: int = 5000
    #: how often the drainer looks for spooled events
    drain_interval_seconds: float = 0.5
    #: how often the retention worker runs (partitions ahead, old ones dropped, pruning)
    retention_interval_seconds: float = 3600.0
    #: rows per statement when retention prunes the unpartitioned tables
    retention_batch_rows: int = 5000
    #: daily event partitions created ahead of today (at start and by the retention worker)
    partitions_ahead_days: int = 3


class IngestSettings(_Section):
    #: the largest webhook body accepted (413 above)
    max_body_bytes: int = 1024 * 1024
    #: events per group-commit transaction at most
    batch_max_events: int = 2000
    #: group-commit flushes running at once
    max_flushes_in_flight: int = 2
    #: events waiting for a flush at most (beyond: the spool, or 503)
    queue_max_events: int = 50_000
    #: the Retry-After of a 503
    retry_after_seconds: int = 30
    #: webhook nonces (Mailgun tokens) remembered in memory at most, oldest forgotten first
    nonce_memory_max: int = 100_000


class HttpClientSettings(_Section):
    """The downstream HTTP client shared by sinks, SNS certificate fetches and SNS
    subscription confirmations (a sink's own ``timeout_seconds`` applies to its requests)."""

    #: seconds for a request that sets no timeout of its own (subscription confirmations)
    timeout_seconds: float = 10.0
    #: connections open at once, over all hosts
    max_connections: int = 100
    #: idle connections kept for reuse
    max_keepalive_connections: int = 20


class SnsSettings(_Section):
    """Fetching SNS signing certificates (SES via SNS sources without pinned certificates)."""

    #: seconds for one certificate fetch
    certificate_timeout_seconds: float = 5.0
    #: failed fetches in a row that open a host's breaker (``sns:<host>``)
    breaker_fail_max: int = 3
    #: seconds a host's breaker stays open before one trial fetch
    breaker_reset_seconds: float = 30.0
    #: seconds a certificate URL that was refused (4xx, not a certificate) is not fetched again
    failure_ttl_seconds: float = 60.0
    #: seconds a URL whose fetch failed for a passing reason (timeout, 5xx) is not fetched again
    transient_failure_ttl_seconds: float = 5.0
    #: hosts with a breaker of their own; the rest share ``sns:other`` (bounds the label)
    max_hosts: int = 32


class DeliverySettings(_Section):
    """The outbox workers (suppressions and sinks) of a process that runs them."""

    #: concurrent dispatch loops per process (they share the outbox via SKIP LOCKED)
    dispatcher_loops: int = 2
    #: due outbox rows one loop claims per pass
    batch_size: int = 100
    #: deliveries one loop runs at once
    concurrency: int = 32
    #: how often soft bounces that left the counting window are forgotten
    housekeeping_interval_seconds: float = 600.0
    #: how often the outbox and DLQ gauges are refreshed
    gauges_interval_seconds: float = 5.0


class ReadSideSettings(_Section):
    """The read side's background work: rollups, recipient activity, backlog gauges."""

    #: how often pending rollup rows are folded into the hourly rollups
    compaction_interval_seconds: float = 5.0
    #: pending rollup rows per fold transaction
    compaction_batch_rows: int = 20_000
    #: how often closed days of events are folded into recipient activity
    activity_fold_interval_seconds: float = 60.0
    #: how long after midnight (UTC) a day stays open for batches still in flight
    activity_fold_grace_seconds: float = 300.0
    #: how often the rollup and activity backlog gauges are refreshed
    gauges_interval_seconds: float = 15.0


class AdminSettings(_Section):
    #: bearer token of the admin API (/v1); absent: it answers 401
    token: str | None = None


class LoggingSettings(_Section):
    #: debug, info, warning or error
    level: str = "info"
    #: "json", "console" or "auto" (console on a TTY, JSON otherwise)
    format: str = "auto"
    #: mask recipient addresses in info-level logs
    mask_recipients: bool = True


class SuppressionSettings(_Section):
    #: soft bounces within the window that suppress an address
    soft_bounce_threshold: int = 3
    #: the window soft bounces are counted in
    soft_bounce_window_seconds: int = 7 * 86400
    #: how long a soft-bounce quarantine lasts (0: until removed)
    soft_bounce_quarantine_seconds: int = 7 * 86400


@dataclass(frozen=True, slots=True)
class SourceSettings(SourceSpec):
    """One ``[[sources]]`` entry: every field of ``handlers.base.SourceSpec`` (the one
    definition of what an adapter is told about its source) plus what only the gateway
    uses. A new per-source field is added to ``SourceSpec`` alone."""

    #: requests per second allowed for this source (0: unlimited)
    rate_limit_per_second: float = 0.0
    #: requests allowed at once above the rate (0: the rate, at least 1)
    rate_limit_burst: int = 0

    def spec(self) -> SourceSpec:
        """The adapter's view: this entry without the gateway's own fields."""
        return SourceSpec(**{f.name: getattr(self, f.name) for f in fields(SourceSpec)})


#: every key a ``[[sources]]`` entry may have (dataclasses ignore unknown keys when
#: msgspec converts them, so load_settings refuses them itself)
_SOURCE_FIELDS = frozenset(f.name for f in fields(SourceSettings))


class SinkSettings(_Section):
    #: the sink's name (in metrics, the DLQ and /v1)
    name: str
    #: http: the endpoint POSTed to; amqp: the broker's URL
    url: str
    #: "http" (signed POST) or "amqp" (RabbitMQ with publisher confirms; see docs/sinks.md)
    kind: str = "http"
    #: Standard Webhooks signing secret (whsec_...); absent: requests are unsigned
    secret: str | None = None
    #: the event types sent (empty: every type)
    event_types: list[str] = msgspec.field(default_factory=list)
    #: seconds per attempt
    timeout_seconds: float = 10.0
    #: attempts in all, the first included (then: the DLQ)
    max_attempts: int = 8
    #: backoff after the first failure; doubles per attempt, full jitter
    backoff_base_seconds: float = 1.0
    #: the longest backoff
    backoff_cap_seconds: float = 3600.0
    #: a sink's Retry-After (429, 503) is honoured up to this
    retry_after_max_seconds: float = 3600.0
    #: failures in a row that open the sink's breaker
    breaker_fail_max: int = 5
    #: seconds the sink's breaker stays open before one probe
    breaker_reset_seconds: float = 30.0
    #: amqp: the broker password (``password_env`` / ``password_file``), kept out of ``url``
    password: str | None = None
    #: amqp: the exchange published to ("" is the default exchange) and its declared type
    exchange: str = "hookline"
    #: amqp: the exchange's type: topic, direct, fanout or headers
    exchange_type: str = "topic"
    #: amqp: routing key template; fields {provider}, {source}, {event_type}
    routing_key: str = "hookline.{provider}.{event_type}"


class Settings(_Section):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    suppressions: SuppressionSettings = msgspec.field(default_factory=SuppressionSettings)
    http_client: HttpClientSettings = msgspec.field(default_factory=HttpClientSettings)
    sns: SnsSettings = msgspec.field(default_factory=SnsSettings)
    delivery: DeliverySettings = msgspec.field(default_factory=DeliverySettings)
    read_side: ReadSideSettings = msgspec.field(default_factory=ReadSideSettings)
    sources: list[SourceSettings] = msgspec.field(default_factory=list)
    sinks: list[SinkSettings] = msgspec.field(default_factory=list)
    #: where the settings came from, for messages
    origin: str = "<defaults>"

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).resolve()

    def source(self, provider: str, name: str) -> SourceSettings | None:
        for source in self.sources:
            if source.provider == provider and source.name == name:
                return source
        return None


_SECTIONS = (
    "server",
    "database",
    "storage",
    "ingest",
    "admin",
    "logging",
    "suppressions",
    "http_client",
    "sns",
    "delivery",
    "read_side",
)
#: short aliases users expect
_ENV_ALIASES = {
    "HOOKLINE_HOST": ("server", "host"),
    "HOOKLINE_PORT": ("server", "port"),
    "HOOKLINE_DATABASE_URL": ("database", "url"),
    "HOOKLINE_DATA_DIR": ("storage", "data_dir"),
    "HOOKLINE_ADMIN_TOKEN": ("admin", "token"),
    "HOOKLINE_LOG_LEVEL": ("logging", "level"),
    "HOOKLINE_FORWARDED_ALLOW_IPS": ("server", "forwarded_allow_ips"),
}


def _where(path: str, raw: Mapping[str, Any]) -> str:
    """Turn a msgspec path like ``$.sources[1].signing_key`` into an operator's words."""
    path = path.removeprefix("$").lstrip(".")
    for kind in ("sources", "sinks"):
        prefix = f"{kind}["
        if path.startswith(prefix):
            index_text, _, rest = path[len(prefix) :].partition("]")
            try:
                entry = raw.get(kind, [])[int(index_text)]
            except (ValueError, IndexError, TypeError, AttributeError):
                entry = {}
            label = kind[:-1]
            if isinstance(entry, Mapping):
                if kind == "sources":
                    label += f" {entry.get('provider', '?')}/{entry.get('name', '?')}"
                else:
                    label += f" {entry.get('name', '?')}"
            label += f" (#{int(index_text) + 1})" if index_text.isdigit() else ""
            field = rest.lstrip(".")
            return f"{label}, field '{field}'" if field else label
    return f"field '{path}'" if path else "the file"


def _resolve_secrets(node: Any, where: str, errors: list[str], environ: Mapping[str, str]) -> Any:
    """Replace every ``X_env`` / ``X_file`` with ``X`` (recursively)."""
    if isinstance(node, list):
        return [
            _resolve_secrets(item, f"{where}[{i}]", errors, environ) for i, item in enumerate(node)
        ]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        base, _, suffix = key.rpartition("_")
        if suffix in ("env", "file") and base in SECRET_FIELDS:
            if base in node:
                errors.append(f"{where}: give only one of '{base}' and '{key}'")
                continue
            if not isinstance(value, str):
                errors.append(f"{where}: '{key}' must be a string")
                continue
            if suffix == "env":
                secret = environ.get(value)
                if secret is None:
                    errors.append(f"{where}: '{key}' names ${value}, which is not set")
                    continue
            else:
                try:
                    secret = Path(value).read_text().strip()
                except OSError as exc:
                    errors.append(f"{where}: '{key}' cannot read {value}: {exc.strerror}")
                    continue
            out[base] = secret
        else:
            out[key] = _resolve_secrets(value, where, errors, environ)
    return out


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith("HOOKLINE_") or name == "HOOKLINE_CONFIG":
            continue
        target = _ENV_ALIASES.get(name)
        if target is None:
            rest = name.removeprefix("HOOKLINE_").lower()
            for section in _SECTIONS:
                if rest.startswith(section + "_"):
                    target = (section, rest[len(section) + 1 :])
                    break
        if target is None:
            continue
        section, field = target
        raw.setdefault(section, {})[field] = value


def _entry_label(kind: str, entry: Mapping[str, Any], index: int) -> str:
    if kind == "sources":
        return f"source {entry.get('provider', '?')}/{entry.get('name', '?')} (#{index + 1})"
    return f"sink {entry.get('name', '?')} (#{index + 1})"


def _unknown_source_fields(entries: Any) -> list[str]:
    """A key no ``[[sources]]`` entry has (a typo) is refused, as in every other section."""
    if not isinstance(entries, list):
        return []
    return [
        f"{_entry_label('sources', entry, i)}, field '{key}': unknown field"
        for i, entry in enumerate(entries)
        if isinstance(entry, dict)
        for key in entry
        if key not in _SOURCE_FIELDS
    ]


def _validate(settings: Settings) -> list[str]:
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, source in enumerate(settings.sources):
        label = f"source {source.provider}/{source.name} (#{i + 1})"
        if source.provider not in PROVIDERS:
            errors.append(
                f"{label}, field 'provider': unknown provider '{source.provider}' "
                f"(known: {', '.join(PROVIDERS)})"
            )
            continue
        try:
            adapter = get_adapter(source.provider)
        except UnknownProviderError:
            errors.append(
                f"{label}, field 'provider': provider '{source.provider}' is not available "
                "in this build"
            )
            continue
        key = (source.provider, source.name)
        if key in seen:
            errors.append(f"{label}, field 'name': duplicate source name")
        seen.add(key)
        if not source.name or "/" in source.name:
            errors.append(f"{label}, field 'name': must be a non-empty URL segment")
        for field in adapter.required_fields:
            if getattr(source, field) in (None, "", [], {}):
                errors.append(
                    f"{label}, field '{field}': required for {source.provider} "
                    f"(or '{field}_env' / '{field}_file')"
                )
        try:
            adapter.check_source(source.spec())
        except ValueError as exc:
            errors.append(f"{label}, field 'signing_key': {exc}")
        if (
            not adapter.signs_requests
            and source.basic_auth is None
            and source.bearer_token is None
            and not source.allow_unauthenticated
        ):
            errors.append(
                f"{label}: {source.provider} signs nothing; set 'basic_auth' or "
                "'bearer_token' (or 'allow_unauthenticated = true')"
            )
        if source.basic_auth is not None and ":" not in source.basic_auth:
            errors.append(f"{label}, field 'basic_auth': must be 'user:password'")
        if source.replay_window_seconds <= 0:
            errors.append(f"{label}, field 'replay_window_seconds': must be positive")
    try:
        TrustedProxies(settings.server.forwarded_allow_ips)
    except ValueError as exc:
        errors.append(f"[server], field 'forwarded_allow_ips': {exc}")
    sink_names: set[str] = set()
    valid_types = {t.value for t in EventType}
    for i, sink in enumerate(settings.sinks):
        label = f"sink {sink.name} (#{i + 1})"
        if sink.name in sink_names:
            errors.append(f"{label}, field 'name': duplicate sink name")
        sink_names.add(sink.name)
        if sink.kind == "http" and not sink.url.startswith(("http://", "https://")):
            errors.append(f"{label}, field 'url': must be an http(s) URL")
        for event_type in sink.event_types:
            if event_type not in valid_types:
                errors.append(f"{label}, field 'event_types': unknown event type '{event_type}'")
        if sink.max_attempts < 1:
            errors.append(f"{label}, field 'max_attempts': must be at least 1")
        errors.extend(_sink_errors(label, sink))
    errors.extend(_suppression_errors(settings.suppressions))
    if settings.ingest.max_body_bytes <= 0:
        errors.append("field 'ingest.max_body_bytes': must be positive")
    if settings.database.connect_retry_max_seconds <= 0:
        errors.append("field 'database.connect_retry_max_seconds': must be positive")
    for field_name, value in (
        ("storage.shutdown_drain_seconds", settings.storage.shutdown_drain_seconds),
        ("server.shutdown_delay_seconds", settings.server.shutdown_delay_seconds),
    ):
        if value < 0:
            errors.append(f"field '{field_name}': must not be negative")
    errors.extend(_server_errors(settings.server))
    errors.extend(_tunable_errors(settings))
    return errors


#: the tunables that must be positive (0 would mean "never" or "none", which none of them
#: allows), as (section, field)
_POSITIVE = (
    ("database", "connect_retry_first_seconds"),
    ("database", "ping_interval_seconds"),
    ("ingest", "nonce_memory_max"),
    ("storage", "drain_chunk_events"),
    ("storage", "drain_interval_seconds"),
    ("storage", "retention_interval_seconds"),
    ("storage", "retention_batch_rows"),
    *(("http_client", f.name) for f in msgspec.structs.fields(HttpClientSettings)),
    *(("sns", f.name) for f in msgspec.structs.fields(SnsSettings)),
    *(("delivery", f.name) for f in msgspec.structs.fields(DeliverySettings)),
    *(
        ("read_side", f.name)
        for f in msgspec.structs.fields(ReadSideSettings)
        if f.name != "activity_fold_grace_seconds"
    ),
)


def _tunable_errors(settings: Settings) -> list[str]:
    errors = [
        f"field '{section}.{field}': must be positive"
        for section, field in _POSITIVE
        if getattr(getattr(settings, section), field) <= 0
    ]
    for field_name, value in (
        ("storage.partitions_ahead_days", settings.storage.partitions_ahead_days),
        ("read_side.activity_fold_grace_seconds", settings.read_side.activity_fold_grace_seconds),
    ):
        if value < 0:
            errors.append(f"field '{field_name}': must not be negative")
    return errors


def _server_errors(section: ServerSettings) -> list[str]:
    """The connection deadlines must be positive (none of them may be turned off)."""
    fields = (
        "header_read_timeout_seconds",
        "keep_alive_timeout_seconds",
        "body_read_timeout_seconds",
    )
    return [f"field 'server.{f}': must be positive" for f in fields if getattr(section, f) <= 0]


def _sink_errors(label: str, sink: SinkSettings) -> list[str]:
    """Delivery fields of one sink (see gateway/delivery)."""
    from gateway.amqp_target import amqp_settings_errors
    from gateway.sink_secrets import decode_secret

    errors: list[str] = []
    if sink.kind not in ("http", "amqp"):
        errors.append(f"{label}, field 'kind': must be 'http' or 'amqp'")
    if sink.kind == "amqp":
        errors.extend(amqp_settings_errors(label, sink))
    if sink.secret is not None:
        try:
            decode_secret(sink.secret)
        except ValueError as exc:
            errors.append(f"{label}, field 'secret': {exc}")
    for field in ("timeout_seconds", "backoff_base_seconds", "breaker_reset_seconds"):
        if getattr(sink, field) <= 0:
            errors.append(f"{label}, field '{field}': must be positive")
    if sink.backoff_cap_seconds < sink.backoff_base_seconds:
        errors.append(f"{label}, field 'backoff_cap_seconds': must be >= backoff_base_seconds")
    if sink.retry_after_max_seconds < 0:
        errors.append(f"{label}, field 'retry_after_max_seconds': must not be negative")
    if sink.breaker_fail_max < 1:
        errors.append(f"{label}, field 'breaker_fail_max': must be at least 1")
    return errors


def _suppression_errors(section: SuppressionSettings) -> list[str]:
    errors: list[str] = []
    if section.soft_bounce_threshold < 1:
        errors.append("field 'suppressions.soft_bounce_threshold': must be at least 1")
    if section.soft_bounce_window_seconds <= 0:
        errors.append("field 'suppressions.soft_bounce_window_seconds': must be positive")
    if section.soft_bounce_quarantine_seconds < 0:
        errors.append("field 'suppressions.soft_bounce_quarantine_seconds': must not be negative")
    return errors


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file (``path`` or ``$HOOKLINE_CONFIG``), apply env overrides, validate."""
    environ = os.environ if environ is None else environ
    path = path if path is not None else environ.get("HOOKLINE_CONFIG") or None
    origin = str(path) if path is not None else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{origin}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: malformed TOML: {exc}") from None
    _apply_env(raw, environ)
    errors: list[str] = []
    for kind in ("sources", "sinks"):
        entries = raw.get(kind, [])
        if isinstance(entries, list):
            raw[kind] = [
                _resolve_secrets(entry, _entry_label(kind, entry, i), errors, environ)
                if isinstance(entry, dict)
                else entry
                for i, entry in enumerate(entries)
            ]
    for section in _SECTIONS:
        if isinstance(raw.get(section), dict):
            raw[section] = _resolve_secrets(raw[section], f"[{section}]", errors, environ)
    errors.extend(_unknown_source_fields(raw.get("sources")))
    if errors:
        raise ConfigError(f"{origin}: " + "; ".join(errors))
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        detail, _, path_text = message.rpartition(" - at `")
        if path_text:
            raise ConfigError(
                f"{origin}: {_where(path_text.rstrip('`'), raw)}: {detail or message}"
            ) from None
        raise ConfigError(f"{origin}: {message}") from None
    errors = _validate(settings)
    if errors:
        raise ConfigError(f"{origin}: " + "; ".join(errors))
    return msgspec.structs.replace(settings, origin=origin)
