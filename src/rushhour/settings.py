"""The one settings table: defaults, then ``rushhour.toml``, then ``RUSHHOUR_*`` variables, then flags.

Nested keys use ``__`` in the environment: ``RUSHHOUR_STORE__URL`` sets ``[store] url``. Secrets are
never written in the file: a setting ending in ``_env`` names the environment variable that holds them.

>>> s = load_settings(config=None, overrides={"timezone": "Europe/Berlin"}, environ={})
>>> s.timezone, s.data_dir.name, s.store_url().startswith("sqlite:///")
('Europe/Berlin', '.rushhour', True)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
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
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rushhour.errors import ConfigError, RushhourError
from rushhour.pipeline.spec import SourceSpec
from rushhour.timeutil import bucket_seconds, parse_duration, zone

DEFAULT_CONFIG = Path("rushhour.toml")

_toml_path: ContextVar[Path | None] = ContextVar("rushhour_toml_path", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    """Where state lives. Empty URL: SQLite (WAL) in the data directory."""

    url: str = Field("", description="SQLAlchemy URL; empty means sqlite in data_dir")


class DetectSettings(_Section):
    """The anomaly test applied to each closed bucket."""

    k: float = Field(3.5, gt=0, description="band half-width in deviations (mean ± k·deviation)")
    resolve_after: int = Field(3, ge=1, description="quiet buckets before an episode resolves")
    rcf: bool = Field(True, description="run a Random Cut Forest per series beside the band")
    rcf_trees: int = Field(50, ge=1, le=1000, description="trees of each series' forest")
    rcf_samples: int = Field(256, ge=10, le=1000, description="samples per tree of each forest")
    rcf_shingle: int = Field(4, ge=1, le=30, description="buckets per shingle (the forest's input)")
    rcf_box_cache: float = Field(
        0.0, ge=0, le=1, description="fraction of each forest's nodes with a cached bounding box"
    )
    rcf_time_decay: int = Field(
        5_040,
        ge=11,
        description="records over which each forest's sample decays (Kinesis's time decay, the "
        "sampler's 1/lambda; 5,040 = half a week of 1-minute buckets); must exceed rcf_samples. "
        "A forest's memory at steady state grows with it (docs/benchmarks.md)",
    )
    default: bool = Field(
        True, description="run the default detector (rushhour.detect.default) per series"
    )
    alert_by: Literal["default", "mean_band"] = Field(
        "default",
        description="whose decision alerts: the default detector's per-bucket flag, or the Mean "
        "Predictor band (the band also decides while the default detector is off)",
    )
    default_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="default detector: a bucket is anomalous at score >= this (Q = 1e-5 at 0.5)",
    )
    default_critical: float = Field(
        0.75, gt=0, lt=1, description="default detector: critical at score >= this"
    )
    default_holdoff: int = Field(
        60,
        ge=0,
        description="default detector: buckets between two pages of a series (the page "
        "`rushhour evaluate` scores; live notifications follow episodes of anomalous buckets)",
    )
    default_warmup: int = Field(
        150, ge=0, description="default detector: buckets a series learns before it may alert"
    )
    default_components: list[str] = Field(
        ["residual", "shift", "range"],
        description="default detector: components (residual, shift, range, discord)",
    )
    default_snapshot: int = Field(
        360,
        ge=1,
        description="default detector: buckets between two stored snapshots of a series' state "
        "(a restart replays at most this many stored buckets per series)",
    )
    min_relative_deviation: float = Field(
        0.1, ge=0, description="ignore deviations smaller than this fraction of expected"
    )
    deviation: Literal["std", "mad"] = Field("std", description="deviation measure per bucket")
    key: Literal["weekday_weekend", "day_of_week", "holiday"] = Field(
        "holiday",
        description="Mean Predictor key: holiday (weekday, weekend, holiday), weekday_weekend "
        "(the seed's) or day_of_week",
    )

    @model_validator(mode="after")
    def _decay_above_samples(self) -> DetectSettings:
        if self.rcf_time_decay <= self.rcf_samples:
            raise ValueError(
                f"rcf_time_decay ({self.rcf_time_decay}) must be greater than rcf_samples "
                f"({self.rcf_samples})"
            )
        return self


class DemoSettings(_Section):
    """The demo main job of ``rushhour run`` without sources."""

    history_weeks: int = Field(
        4, ge=1, le=52, description="weeks of history generated at first start"
    )
    speed: float = Field(60.0, gt=0, description="simulated minutes per wall-clock second")
    base_rpm: float = Field(1200.0, gt=0, description="typical requests per minute at night")
    anomalies_per_day: float = Field(4.0, ge=0, description="injected anomalies per simulated day")
    seed: int = Field(7, description="seed of the synthetic traffic")
    series: str = Field("connected-drive", description="name of the demo series")


class PipelineSettings(_Section):
    """The live pipeline's runtime."""

    lateness: str = Field(
        "2m", description="allowed lateness: the watermark trails the newest event by this"
    )
    queue_size: int = Field(64, ge=1, description="batches buffered between sources and processing")
    retrain_cron: str = Field(
        "0 3 * * 1", description="when to retrain (cron, in `timezone`); empty: never"
    )
    train_weeks: int = Field(4, ge=1, description="weeks of stored history each retraining uses")
    min_history: str = Field(
        "1d", description="history a series needs before it gets its own model"
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="threads that score the series' forests of a batch (results do not depend on "
        "it); more pays only on a host with idle cores",
    )

    @field_validator("lateness", "min_history")
    @classmethod
    def _duration(cls, v: str) -> str:
        return _as_value_error(parse_duration, v)

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if v.strip():
            from cronsim import CronSim, CronSimError

            try:
                CronSim(v, datetime(2026, 1, 1, tzinfo=UTC))
            except CronSimError as exc:
                raise ValueError(
                    f"not a cron expression: {exc} (e.g. '0 3 * * 1', Mondays 03:00)"
                ) from exc
        return v

    def lateness_seconds(self) -> float:
        return parse_duration(self.lateness).total_seconds()

    def min_history_seconds(self) -> float:
        return parse_duration(self.min_history).total_seconds()


class ApiSettings(_Section):
    """The HTTP API (``rushhour serve``)."""

    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8080, ge=0, le=65535, description="TCP port")
    token: SecretStr | None = Field(None, description="bearer token for write endpoints (secret)")
    enabled: bool = Field(False, description="serve the API inside `rushhour run`")
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest request body accepted, in bytes"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty: CORS off"
    )


Severity = Literal["info", "warning", "critical"]

CHATBOT_TEMPLATE = (
    '{"status": "${status}", "description": "${sentence}", "priority": "high", '
    '"dedupe_key": "${dedupe_key}"}'
)


class _ChannelSettings(_Section):
    """Keys every ``[[notify]]`` table has."""

    name: str = Field("", description="channel name in the outbox and logs (default: the type)")
    min_severity: Severity = Field("warning", description="lowest severity this channel receives")
    timeout: float = Field(10.0, gt=0, description="seconds per request")

    def channel_name(self) -> str:
        return self.name or str(getattr(self, "type", "channel"))


class SlackNotify(_ChannelSettings):
    """Slack Web API with a bot token: chat.postMessage, then the PNG in the thread."""

    type: Literal["slack"]
    channel: str = Field(description="channel name or id, e.g. #traffic-alerts")
    token_env: str = Field("SLACK_BOT_TOKEN", description="variable holding the xoxb- token")
    base_url: str = Field("https://slack.com/api/", description="Web API base URL")
    upload_image: bool = Field(True, description="upload the plot into the thread")


class SlackWebhookNotify(_ChannelSettings):
    """Slack incoming webhook: text, and an image block linking to rushhour's own PNG."""

    type: Literal["slack_webhook"]
    url_env: str = Field("SLACK_WEBHOOK_URL", description="variable holding the webhook URL")


class WebhookNotify(_ChannelSettings):
    """Generic JSON webhook with a bearer token (the seed's ChatBot call)."""

    type: Literal["webhook"]
    url: str = Field(description="endpoint URL")
    token_env: str | None = Field(None, description="variable holding the bearer token")
    template: str = Field(CHATBOT_TEMPLATE, description="JSON body with ${field} placeholders")


class AlertmanagerNotify(_ChannelSettings):
    """Alertmanager-compatible webhook payload (version 4)."""

    type: Literal["alertmanager"]
    url: str = Field(description="receiver URL")
    token_env: str | None = Field(None, description="variable holding a bearer token, if any")
    receiver: str = Field("rushhour", description="receiver name in the payload")


class EmailNotify(_ChannelSettings):
    """Email through SMTP, the plot attached."""

    type: Literal["email"]
    host: str = Field("127.0.0.1", description="SMTP server")
    port: int = Field(25, ge=1, le=65535, description="SMTP port")
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    username: str | None = Field(None, description="SMTP user, if the server wants a login")
    password_env: str | None = Field(None, description="variable holding the SMTP password")
    sender: str = Field("rushhour@localhost", description="From address")
    to: list[str] = Field(description="recipients")


class ConsoleNotify(_ChannelSettings):
    """One line per alert on the terminal."""

    type: Literal["console"]
    min_severity: Severity = Field("info", description="lowest severity this channel receives")


class JsonlNotify(_ChannelSettings):
    """One JSON object per alert appended to a file."""

    type: Literal["jsonl"]
    path: Path = Field(Path(".rushhour/alerts.jsonl"), description="file to append to")
    min_severity: Severity = Field("info", description="lowest severity this channel receives")


NotifyChannel = Annotated[
    SlackNotify
    | SlackWebhookNotify
    | WebhookNotify
    | AlertmanagerNotify
    | EmailNotify
    | ConsoleNotify
    | JsonlNotify,
    Field(discriminator="type"),
]


class AlertSettings(_Section):
    """What makes an alert worth sending, and how deliveries are retried."""

    dashboard_url: str = Field(
        "http://127.0.0.1:8080", description="base URL of links and served PNGs"
    )
    group_by: list[str] = Field(["series"], description="labels that group simultaneous alerts")
    group_wait: str = Field("30s", description="wait this long to collect a group")
    repeat_interval: str = Field("4h", description="re-send a still-firing alert after this")
    cooldown: str = Field("10m", description="after a resolve, hold a new firing this long")
    min_abs_deviation: float = Field(0.0, ge=0, description="minimum |actual - expected|")
    min_rel_deviation: float = Field(
        0.0, ge=0, description="minimum |actual - expected| / expected"
    )
    direction: Literal["above", "below", "both"] = Field("both", description="which side alerts")
    m: int = Field(1, ge=1, description="M of the M-of-N bucket trigger")
    n: int = Field(1, ge=1, description="N of the M-of-N bucket trigger")
    plot_hours: float = Field(6.0, gt=0, description="hours of history in the alert plot")
    retry_base: float = Field(2.0, gt=0, description="first retry delay in seconds")
    retry_max: float = Field(600.0, gt=0, description="longest retry delay in seconds")

    @field_validator("group_wait", "repeat_interval", "cooldown")
    @classmethod
    def _duration(cls, v: str) -> str:
        return _as_value_error(parse_duration, v)

    @field_validator("n")
    @classmethod
    def _m_of_n(cls, v: int, info: Any) -> int:
        m = info.data.get("m", 1)
        if m > v:
            raise ValueError(f"m must be <= n, got m={m}, n={v}")
        return v


class Settings(BaseSettings):
    """Effective settings of one rushhour process."""

    model_config = SettingsConfigDict(
        env_prefix="RUSHHOUR_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(Path(".rushhour"), description="where rushhour keeps its state")
    timezone: str = Field("UTC", description="IANA zone in which seasonality is computed")
    bucket: str = Field("1m", description="bucket width, e.g. 1m or 5m")
    holidays_country: str = Field("US", description="country whose public holidays are used")
    holidays_subdiv: str | None = Field(None, description="region of that country, if any")
    store: StoreSettings = Field(default_factory=StoreSettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    source: list[SourceSpec] = Field(default_factory=list, description="where live data comes from")
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    notify: list[NotifyChannel] = Field(
        default_factory=list, description="alert channels, one [[notify]] table each"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return _as_value_error(zone, v)

    @field_validator("bucket")
    @classmethod
    def _bucket_width(cls, v: str) -> str:
        return _as_value_error(bucket_seconds, v)

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
        toml = _toml_path.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # derived values -------------------------------------------------------------------------
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store."""
        return self.store.url or f"sqlite:///{self.data_dir / 'rushhour.db'}"

    def bucket_width(self) -> int:
        """Bucket width in seconds."""
        return bucket_seconds(self.bucket)

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, secrets replaced by ``'***'``."""
        data = self.model_dump(mode="json")
        data["store"]["url"] = mask_url(self.store_url())
        if self.api.token is not None:
            data["api"]["token"] = "***"
        return data


def _as_value_error(check: Any, value: str) -> str:
    """Run a core check inside a validator; pydantic reports only ValueErrors as field errors."""
    try:
        check(value)
    except RushhourError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from exc
    return value


def mask_url(url: str) -> str:
    """Hide the password in a database URL.

    >>> mask_url("postgresql+psycopg://bob:hunter2@db:5432/x")
    'postgresql+psycopg://bob:***@db:5432/x'
    """
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


@contextmanager
def _environ(environ: Mapping[str, str] | None) -> Iterator[None]:
    if environ is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_settings(
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings.

    ``config`` names a TOML file; without one, ``./rushhour.toml`` is read when it exists. ``overrides``
    are the CLI flags (highest precedence). ``environ`` replaces ``os.environ`` (for tests).
    """
    if config is not None and not config.is_file():
        raise ConfigError(
            f"config file {config} does not exist",
            hint="check the path given to --config, or leave it out to use defaults",
        )
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    token = _toml_path.set(path)
    try:
        with _environ(environ):
            return Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    finally:
        _toml_path.reset(token)


def _describe(exc: ValidationError, path: Path | None) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "settings"
    origin = f" (from {path}, RUSHHOUR_* variables or flags)" if path else ""
    more = f"; and {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"setting {where!r}: {err['msg']}, got {err.get('input')!r}{origin}{more}"


def describe_settings() -> list[tuple[str, str, str]]:
    """(key, default, description) for every setting: feeds ``docs/configuration.md``'s test."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, _Section):
                walk(ann, f"{prefix}{name}.")
                continue
            default = field.get_default(call_default_factory=True)
            rows.append((f"{prefix}{name}", repr(default), field.description or ""))

    walk(Settings, "")
    return rows
