"""One typed, frozen settings object, read from STREAM_APP_* variables and .env."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every tunable of the service. Each field maps to ``STREAM_APP_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_APP_", env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    kafka_broker: str = Field("kafka://127.0.0.1:9092", description="Broker URL(s).")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str = Field("PLAIN", description="SASL mechanism.")
    kafka_sasl_username: str | None = Field(None, description="SASL user.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL.")
    input_topic: str = Field("basket-updates", description="Basket-update events.")
    output_topic: str = Field("recommendations", description="Published top-N lists.")
    dlq_topic: str = Field("basket-updates.dlq", description="Rejected events.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of new topics.")
    consumer_group: str = Field("stream-app", description="Faust app id / group.")
    kafka_session_timeout: timedelta = Field(
        timedelta(seconds=10),
        description="How long the group waits for a silent worker before its "
        "partitions move to another (the failover pause after a crash).",
    )

    # Redis
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    redis_password: SecretStr | None = Field(None, description="Redis password.")
    redis_username: str | None = Field(None, description="Redis ACL user.")
    basket_ttl: timedelta = Field(
        timedelta(hours=24), description="Expiry of an open basket without events."
    )
    seen_events_ttl: timedelta = Field(
        timedelta(days=7), description="How long event ids are kept for dedup."
    )
    redis_key_prefix: str = Field(
        "", description="Prefix of every state key (test runs, shared servers)."
    )
    history_cache_mb: float = Field(
        64.0,
        ge=0,
        description="Memory for purchase histories the worker keeps between "
        "batches (checked against Redis on every use; 0 turns it off).",
    )

    # Model and scoring
    artifact_dir: Path = Field(
        PROJECT_ROOT / "artifacts" / "current", description="Model artifact folder."
    )
    data_path: Path = Field(
        PROJECT_ROOT / "data" / "online_retail.csv.gz",
        description="Transaction export used by train/replay/bootstrap.",
    )
    top_n: int = Field(10, ge=1, le=100, description="Items per recommendation.")
    recommend_repeats: bool = Field(
        True, description="Whether previously bought items may be recommended."
    )

    # Worker
    batch_max_events: int = Field(500, ge=1, description="Events per micro-batch.")
    batch_window: timedelta = Field(
        timedelta(milliseconds=5), description="Max wait to fill a micro-batch."
    )
    scoring_threads: int = Field(
        1,
        ge=1,
        description="Threads the compiled scorer may use per batch; Kafka and "
        "Redis share the worker's machine, so more help only on spare cores.",
    )
    max_event_bytes: int = Field(64_000, ge=256, description="Largest event accepted.")
    max_items_per_event: int = Field(200, ge=1, description="Most items per event.")
    output_contributions: bool = Field(
        False, description="Publish each item's per-factor contributions."
    )
    max_event_future_skew: timedelta = Field(
        timedelta(hours=1),
        description="How far ahead of the worker's clock an "
        "event timestamp may be before it is rejected.",
    )
    web_port: int = Field(6066, description="Metrics/health HTTP port of the worker.")
    web_host: str = Field(
        "127.0.0.1",
        description="Interface of the metrics/health server; 0.0.0.0 exposes it "
        "on every network (e.g. for a scraper in another container).",
    )
    log_json: bool = Field(False, description="Log as JSON lines instead of text.")
    log_level: str = Field("INFO", description="Root log level of the package.")

    def to_environment(self) -> dict[str, str]:
        """Render every set field as ``STREAM_APP_*`` variables.

        A process started with them (e.g. a worker subprocess) reads back the
        same settings: durations as ISO 8601, secrets in clear (so keep this
        mapping out of logs), booleans as ``true``/``false``.
        """
        environment = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, timedelta):
                value = f"PT{value.total_seconds():g}S"
            elif isinstance(value, bool):
                value = "true" if value else "false"
            environment[f"STREAM_APP_{name.upper()}"] = str(value)
        return environment


def redact_url(url: str) -> str:
    """Return a URL fit for logs: any ``user:password@`` part becomes ``***@``."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()


def settings_table() -> str:
    """Render every setting as a markdown table row: env name, meaning, default."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, Path):
            default = (
                default.relative_to(PROJECT_ROOT)
                if default.is_relative_to(PROJECT_ROOT)
                else default
            )
        if isinstance(default, timedelta):
            default = f"{default.total_seconds():g} s"
        shown = "unset" if default in (None, "") else f"`{default}`"
        rows.append(f"| `STREAM_APP_{name.upper()}` | {field.description} | {shown} |")
    return "\n".join(rows)
