"""One typed settings object shared by every process (environment prefix ``GENQUEUE_``)."""

import ipaddress
import os
from dataclasses import field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.store_url import parse_store_url

DEFAULT_UPSTREAM_URL = "https://queue.fal.run"
MIN_METRICS_TOKEN = 16
DEFAULT_FAL_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
MIN_SECRET_KEY = 32
"""Characters ``GENQUEUE_SECRET_KEY`` must have at least."""
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
"""The longest an S3 presigned URL (SigV4) may be valid."""
CommaList = Annotated[tuple[str, ...], NoDecode]
"""A setting written ``a,b,c`` in the environment."""


def default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "genqueue"


class Settings(BaseSettings):
    """Read once at each edge (app factory, Celery app, CLI) and passed on as values."""

    # An empty variable counts as unset (a blank ``GENQUEUE_X=`` line in ``.env``): it takes
    # the default, and an empty ``GENQUEUE_UPSTREAM_KEY`` no longer hides ``FAL_KEY``. A refused
    # secret must not be echoed in the error (hide_input_in_errors).
    model_config = SettingsConfigDict(
        env_prefix="GENQUEUE_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    broker_url: str = ""

    upstream_url: str = DEFAULT_UPSTREAM_URL
    upstream_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GENQUEUE_UPSTREAM_KEY", "FAL_KEY")
    )
    upstream_auth_scheme: Literal["Key", "Bearer"] = "Key"
    upstream_connect_timeout: float = Field(5.0, gt=0)
    upstream_read_timeout: float = Field(30.0, gt=0)
    upstream_max_connections: int = Field(64, ge=1)
    upstream_start_timeout: float | None = Field(None, gt=1)
    max_in_flight: int = Field(0, ge=0, description="cap on jobs live upstream; 0 = no cap")
    upstream_webhook_url: str | None = Field(
        None, description="genqueue's public POST /webhooks/fal, sent as ?fal_webhook=; unset: off"
    )
    fal_jwks_url: str = Field(
        DEFAULT_FAL_JWKS_URL, description="the public keys fal signs its webhooks with"
    )
    fal_jwks_cache_seconds: float = Field(
        86400.0, gt=0, le=86400.0, description="the JWKS is fetched again after this long"
    )
    fal_jwks_refresh_interval: float = Field(
        60.0,
        ge=0,
        description="a signature no cached key verifies refetches the JWKS at most this often",
    )
    webhook_poll_margin: float = Field(
        15.0, gt=0, description="webhook jobs: first status check this long after the likely finish"
    )
    webhook_poll_interval: float = Field(
        60.0, gt=0, description="webhook jobs: seconds between the safety-net status checks"
    )

    poll_min_delay: float = Field(0.5, gt=0)
    poll_max_delay: float = Field(10.0, gt=0)
    poll_jitter: float = Field(0.2, ge=0, le=1)
    error_min_delay: float = Field(1.0, gt=0)
    error_max_delay: float = Field(60.0, gt=0)
    max_submit_attempts: int = Field(8, ge=1, description="cap on submits after ambiguous ones")
    max_poll_errors: int = Field(60, ge=1)
    job_deadline: float = Field(1800.0, gt=0, description="seconds from creation to a forced end")
    deadline_grace: float = Field(
        60.0, ge=0, description="seconds a job cancelled at its deadline may take to settle"
    )
    ambiguous_submit: Literal["resubmit", "fail"] = "resubmit"

    retention_days: float = Field(
        0.0, ge=0, description="days a terminal job and its events are kept; 0 = forever"
    )

    media_store: str = Field(
        "", description="where output files are copied: file:///dir or s3://bucket/prefix"
    )
    media_s3_endpoint: str | None = Field(
        None, description="S3-compatible endpoint URL (else AWS_ENDPOINT_URL, else AWS's own)"
    )
    media_s3_region: str | None = Field(None, description="S3 region (else AWS_REGION)")
    media_public_base: str | None = Field(
        None, description="hand out {base}/{key} (a CDN or public bucket) instead of API URLs"
    )
    media_presign_seconds: float = Field(
        0.0,
        ge=0,
        le=MAX_PRESIGN_SECONDS,
        description="with an s3:// store, hand out presigned GET URLs valid this long instead "
        "of API URLs (at most 7 days); 0 = off",
    )
    media_signing_key: SecretStr | None = Field(
        None, description="HMAC key of the media URLs (default: a key made in the data dir)"
    )
    media_max_bytes: int = Field(100 * 1024 * 1024, ge=1, description="largest file copied")
    media_retention_days: float = Field(
        0.0, ge=0, description="days stored files are kept after the job ended; 0 = forever"
    )
    media_deadline: float = Field(
        3600.0, gt=0, description="seconds after completion that failing copies are retried"
    )
    media_timeout: float = Field(
        120.0, gt=0, description="seconds one file's copy may take before it counts as failed"
    )
    media_concurrency: int = Field(
        16, ge=1, description="files a worker process copies at once (one media tick at a time)"
    )
    media_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how much lower the copies' CPU priority is (Linux `nice`): the copy "
        "threads', and the session's of a worker that copies but runs no polls and leads its "
        "session, so polls on the host win the CPU; 0 = the same",
    )
    media_allow_private: bool = Field(
        False,
        description="output files may be copied from any address, private ones too "
        "(development; `genqueue up`): else the client webhooks' address policy applies",
    )
    media_wait: float = Field(
        30.0,
        ge=0,
        description="seconds after completion a sync /run answer and a client webhook wait for "
        "the copy of the files, to carry genqueue's URLs; 0 = never wait",
    )

    tick_interval: float = Field(1.0, gt=0)
    reconcile_interval: float = Field(5.0, gt=0)
    poll_batch_size: int = Field(50, ge=1)
    submit_batch_size: int = Field(
        16, ge=1, description="generations per submit claim, all sent upstream at once"
    )
    dispatch_limit: int = Field(2000, ge=1)
    lease_seconds: float = Field(60.0, gt=0)
    submit_grace: float = Field(
        10.0, gt=0, description="pending rows younger than this are left to their own task"
    )

    webhook_timeout: float = Field(
        15.0, gt=0, description="client webhook: seconds to connect, to send, to get the answer"
    )
    webhook_concurrency: int = Field(
        16, ge=1, description="client webhook deliveries in flight at once, all workers together"
    )
    webhook_per_destination: int = Field(
        4, ge=1, description="client webhook deliveries in flight to one scheme://host:port"
    )
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        description="client webhook: seconds before each retry after a failed attempt",
    )
    webhook_allow_private: bool = Field(
        False, description="client webhooks may go to any address (development; `genqueue up`)"
    )
    webhook_allowed_hosts: CommaList = Field(
        (), description="hosts (`a.example`, `*.corp.example`) webhooks may reach at any address"
    )
    webhook_allowed_networks: CommaList = Field(
        (), description="CIDRs webhooks may reach even where private (`10.1.0.0/16,fd00::/8`)"
    )
    secret_key: SecretStr | None = Field(
        None,
        description=f"encrypts the webhook signing secrets (>= {MIN_SECRET_KEY} characters); "
        "unset: a key file in the data dir",
    )

    public_url: str | None = Field(
        None, description="base URL the API hands out in fal URLs (default: the request's host)"
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses/networks whose X-Forwarded-Proto/-Host are "
        "believed; '*' = every peer; empty = none",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve the API's /metrics here, not on the API port"
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="the API's /metrics answers only 'Authorization: Bearer <token>' (16+ chars)",
    )
    api_key_cache_seconds: float = Field(
        5.0, ge=0, description="an API process trusts a key lookup this long (revocation lag)"
    )
    model_prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description='USD a unit (image) by endpoint id, over the built-in prices: {"id": 0.05}',
    )
    models_file: Path | None = Field(
        None,
        description="a YAML or JSON model catalogue file: its entries are added to the "
        "built-in models, or replace the built-in with the same endpoint id",
    )
    allow_unlisted_models: bool = Field(
        False,
        description="accept any well-formed endpoint id not in the catalogue, its input only "
        "checked to be a JSON object within max_body_bytes (unpriced, typical run time)",
    )
    rate_limit_url: str = Field(
        "", description="Redis for the per-tenant create rate limits (default: the broker's)"
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1, description="larger request bodies get 413")
    db_connect_timeout: float = Field(5.0, gt=0)
    broker_connect_timeout: float = Field(2.0, gt=0)
    stream_poll_interval: float = Field(
        0.5, gt=0, description="status streams: period of the one DB check for all of them"
    )
    stream_max_per_key: int = Field(
        50, ge=1, description="status streams one API key may hold open per API process"
    )
    stream_max_seconds: float = Field(
        600.0, gt=0, description="a status stream ends after this long (the client reconnects)"
    )
    stream_ping_interval: float = Field(10.0, gt=0, description="status stream: keepalive period")
    run_timeout: float = Field(
        60.0, gt=0, le=3600, description="POST /run/{model}: seconds to wait for the job to end"
    )

    # Processes started by the `genqueue` CLI (`api`, `flower`, `up`) and the worker's /metrics.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, description="API processes (uvicorn workers)")
    flower_host: str = "127.0.0.1"
    flower_port: int = Field(5555, ge=1, le=65535)
    flower_user: str = "admin"
    flower_password: SecretStr | None = Field(
        None, description="basic-auth password; `genqueue up` generates one when unset"
    )
    console_flower_url: str | None = Field(
        None,
        description="where the console's overview links to Flower "
        "(default: http://FLOWER_HOST:FLOWER_PORT)",
    )
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve the worker's Prometheus /metrics on this port"
    )

    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("metrics_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN:
            raise ValueError(f"a metrics token has at least {MIN_METRICS_TOKEN} characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        """Every entry an address or a network (or ``*``): a typo fails at start, by name."""
        for entry in (e.strip() for e in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or network: {entry!r}") from None
        return value

    @field_validator("webhook_allowed_hosts", "webhook_allowed_networks", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays must be seconds >= 0")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry)  # ValueError names the entry
        return value

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY:
            raise ValueError(f"must be at least {MIN_SECRET_KEY} characters")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'genqueue.db'}"
        if not self.broker_url:
            self.broker_url = "redis://127.0.0.1:6379/0"
        if not self.rate_limit_url:
            self.rate_limit_url = self.broker_url
        self.upstream_url = self.upstream_url.rstrip("/")
        if self.public_url:
            self.public_url = self.public_url.rstrip("/")
        if not self.upstream_webhook_url:
            self.upstream_webhook_url = None
        if not self.media_store:
            self.media_store = f"file://{(self.data_dir / 'media').absolute()}"
        if self.media_public_base:
            self.media_public_base = self.media_public_base.rstrip("/")
        return self

    @model_validator(mode="after")
    def _check_media(self) -> "Settings":
        """The media store's URL and how its files are handed out (after the defaults)."""
        try:
            parse_store_url(self.media_store)
        except ValueError as exc:
            raise ValueError(f"GENQUEUE_MEDIA_STORE: {exc}") from None
        if self.media_presign_seconds and not self.media_store.startswith("s3://"):
            raise ValueError("GENQUEUE_MEDIA_PRESIGN_SECONDS needs an s3:// GENQUEUE_MEDIA_STORE")
        if self.media_presign_seconds and self.media_public_base:
            raise ValueError(
                "set GENQUEUE_MEDIA_PRESIGN_SECONDS or GENQUEUE_MEDIA_PUBLIC_BASE, not both"
            )
        return self

    def upstream_key_value(self) -> str | None:
        return self.upstream_key.get_secret_value() if self.upstream_key else None


_SETTING = "genqueue_setting"


def from_setting(name: str) -> Any:
    """A dataclass field that mirrors setting ``name``: its default is the setting's (read from
    the class, not the environment), and :func:`setting_values` reads its value. Value objects
    built from settings (the worker's limits) declare each field once and repeat no default."""
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    return field(default=default, metadata={_SETTING: name})


def setting_values(cls: type[Any], settings: Settings) -> dict[str, Any]:
    """The values of ``cls``'s :func:`from_setting` fields, read from ``settings``."""
    return {
        f.name: getattr(settings, f.metadata[_SETTING])
        for f in fields(cls)
        if _SETTING in f.metadata
    }
