"""The one settings class: every knob is an environment variable prefixed ``FINREC_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "apply": 4.0,
    "purchase": 8.0,
    "hold": 8.0,
}


class Settings(BaseSettings):
    """Runtime configuration, read once at start-up and passed explicitly (never a global)."""

    model_config = SettingsConfigDict(env_prefix="FINREC_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./var/finrec.db"
    artifact_dir: Path = Path("./var/artifacts")
    log_level: str = "INFO"
    log_json: bool = False
    access_log: bool = True  # one line per request: route template, status, duration, ids
    metrics_public: bool = False  # true: /metrics without a key (scraper on a private network)
    # The API's connection pool (SQLite files and PostgreSQL): connections kept open, and how
    # many more a burst may open (closed again when returned).
    database_pool_size: int = Field(default=10, ge=1, le=500)
    database_max_overflow: int = Field(default=10, ge=0, le=500)
    # PostgreSQL: the longest the API waits to connect, or for the server to acknowledge what
    # was sent, before the call fails (then served degraded) instead of hanging.
    database_timeout_seconds: int = Field(default=5, ge=2, le=3600)

    # Data semantics
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    takeup_event_types: list[str] = Field(default_factory=lambda: ["apply", "purchase", "hold"])
    holding_event_types: list[str] = Field(default_factory=lambda: ["purchase", "hold"])
    risk_assessment_validity_months: int = Field(default=24, ge=1, le=240)
    max_future_skew_seconds: int = Field(default=300, ge=0)

    # Import
    import_chunk_rows: int = Field(default=200_000, ge=1_000)

    # API
    default_k: int = Field(default=10, ge=1, le=50)
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    docs_enabled: bool = False  # interactive docs and /openapi.json; make demo turns them on
    secret_key: str = "development-only-secret"

    # Authentication (API keys) and per-key rate limit
    auth_enabled: bool = True  # false: every route open (development only, refused in production)
    auth_cache_ttl_seconds: float = Field(default=5.0, gt=0, le=300)  # also the revocation bound
    auth_negative_cache_size: int = Field(default=10_000, ge=0)
    rate_limit_per_second: float = Field(default=0.0, ge=0)  # per key, per process; 0 = unlimited
    rate_limit_burst: int = Field(default=100, ge=1)
    oauth_issuer: str | None = None  # OAuth2 JWTs: all three set, or none
    oauth_audience: str | None = None
    oauth_jwks_url: str | None = None

    # Serving (recommendations)
    default_strategy: str = "fusion"
    category_cap: int | None = Field(default=3, ge=1)
    placements_showing_held: list[str] = Field(default_factory=list)
    fast_lane: bool = True  # plain recommendation requests skip FastAPI's per-request work
    compiled_lists: bool = True  # live lists assembled by the compiled pass the batch job runs
    profile_cache_size: int = Field(default=100_000, ge=0)
    profile_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    # Profile reads (cache misses) run at most this many at once, each on a pooled connection
    # (at most database_pool_size); the rest wait their turn instead of opening connections.
    # None: 2 on SQLite (reads are in-process, more threads only contend for the interpreter),
    # 8 on a database server (reads wait on the network, so several overlap).
    profile_read_concurrency: int | None = Field(default=None, ge=1, le=500)
    # The longest a request waits for its profile (its turn to read included); past it, the
    # fail-closed list, degraded, as when the database is down.
    profile_read_wait_seconds: float = Field(default=2.0, gt=0, le=60)
    # The garbage collector (app/services/heap.py): every gc_step_seconds, collect what is new
    # and freeze the survivors (0: CPython's own schedule); every gc_full_seconds, the whole heap.
    gc_step_seconds: float = Field(default=1.0, ge=0)
    gc_full_seconds: float = Field(default=3600.0, ge=60)
    catalog_refresh_seconds: float = Field(default=60.0, ge=1)
    model_refresh_seconds: float = Field(default=30.0, ge=1)
    exposure_buffer_size: int = Field(default=50_000, ge=1)
    exposure_flush_seconds: float = Field(default=1.0, gt=0)
    exposure_batch_rows: int = Field(default=1_000, ge=1)
    exposure_writer: Literal["process", "thread"] = "process"  # process: writes off the server
    # Decision records older than this are deleted by `finrec decisions prune` (docs/decisions.md).
    decision_retention_days: int = Field(default=400, ge=1, le=36_500)

    @field_validator("event_weights")
    @classmethod
    def _weights_positive(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one event type is required")
        bad = [name for name, weight in value.items() if weight < 0]
        if bad:
            raise ValueError(f"event weights must be non-negative: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == "development-only-secret":
            raise ValueError("FINREC_SECRET_KEY must be set to a real secret in production")
        if self.environment == "production" and not self.auth_enabled:
            raise ValueError("FINREC_AUTH_ENABLED=false is refused in production")
        oauth = (self.oauth_issuer, self.oauth_audience, self.oauth_jwks_url)
        if any(oauth) and not all(oauth):
            raise ValueError(
                "FINREC_OAUTH_ISSUER, FINREC_OAUTH_AUDIENCE and FINREC_OAUTH_JWKS_URL go together"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def profile_reads_at_once(self) -> int:
        """Concurrent profile reads: the setting, else the backend's default; never more than
        the pool holds."""
        wanted = self.profile_read_concurrency or (2 if self.is_sqlite else 8)
        return min(wanted, self.database_pool_size)


def get_settings() -> Settings:
    """Build settings from the environment (a fresh object each call; callers keep their own)."""
    return Settings()
