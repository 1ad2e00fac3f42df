"""One `Settings` object, read from `VOXFLOW_*` environment variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOXFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production", "test"] = "development"
    # Files the server writes (call recordings); relative paths are from the working directory.
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR / 'voxflow.db'}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    sentry_dsn: SecretStr | None = None

    session_ttl_hours: int = Field(default=24 * 14, ge=1)
    login_rate_limit: str = "10/minute"
    api_rate_limit: str = "600/minute"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Caching a credential lets a read skip one query; the epoch check in Redis keeps
    # revocation immediate across processes, so the cache is only on when Redis is.
    auth_cache_seconds: float = Field(default=30.0, ge=0)
    api_key_touch_seconds: float = Field(default=60.0, ge=0)
    # Workflow reads served from memory; each change drops its entry in every process
    # (a Redis epoch per workflow), so the age limit is only a backstop. Needs Redis.
    read_cache_seconds: float = Field(default=300.0, ge=0)
    read_cache_mb: int = Field(default=64, ge=1)

    # The language model for conversations, extraction and scenario judges: any
    # OpenAI-compatible endpoint. Unset model: offline (routes by examples, no judge).
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0, le=300)
    # The vault's master key(s): base64 of 32 bytes ("2:<key>,1:<key>" while rotating), or the
    # file (generated with mode 0600 on first start while the database holds no ciphertext).
    master_key: SecretStr | None = None
    master_key_file: Path = DEFAULT_DATA_DIR / "master.key"
    # How long an unwrapped data key stays in memory (opening a secret then costs one AES pass).
    vault_cache_seconds: float = Field(default=60.0, ge=0, le=60)

    # Outbound HTTP of workflow tools may reach private addresses only when this is on.
    tools_allow_private_networks: bool = False
    # Compiled versions kept per process; agent → version answers are dropped on change
    # (Redis pub/sub) or, without Redis, after this many seconds.
    runtime_cache_versions: int = Field(default=256, ge=1)
    runtime_resolution_ttl_s: float = Field(default=2.0, ge=0)

    # Webhooks (`voxflow.webhooks`). Endpoints on private, loopback or link-local addresses
    # are refused, at creation and at every delivery, unless this is on (kept apart from the
    # tools' switch: an operator may trust workflows' tools, not every admin's endpoint).
    webhooks_allow_private_networks: bool = False
    # How often each server process looks for deliveries that are due.
    webhooks_poll_interval_s: float = Field(default=2.0, gt=0, le=60)

    # OAuth connections (`voxflow.integrations`). Register the app at the provider with the
    # redirect URL {public_url}/v1/integrations/oauth/callback. A provider without a client id
    # is listed as not configured. Airtable without a secret is a public client (PKCE only).
    airtable_client_id: str | None = None
    airtable_client_secret: SecretStr | None = None
    # One more provider of any kind ("generic"), listed once both of its URLs are set.
    generic_oauth_title: str = "OAuth provider"
    generic_oauth_authorize_url: str | None = None
    generic_oauth_token_url: str | None = None
    generic_oauth_revocation_url: str | None = None
    # A GET that answers 2xx when the access token works (the connection's "Test" button).
    generic_oauth_test_url: str | None = None
    generic_oauth_scopes: str = Field(default="", description="space separated")
    generic_oauth_client_id: str | None = None
    generic_oauth_client_secret: SecretStr | None = None
    generic_oauth_token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "none"
    ] = "client_secret_basic"  # noqa: S105 (a method's name)
    generic_oauth_pkce: bool = True

    # Voice over LiveKit (`transport: "livekit"`): LiveKit Cloud or a self-hosted server. Read from
    # LiveKit's own variable names (which LiveKit's SDKs and `lk` CLI read too), else with the
    # VOXFLOW_ prefix. Any of the three unset: voice sessions over LiveKit answer 409.
    livekit_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LIVEKIT_URL", "VOXFLOW_LIVEKIT_URL", "livekit_url"),
        description="wss://<project>.livekit.cloud or ws(s)://, http(s):// of your server",
    )
    livekit_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LIVEKIT_API_KEY", "VOXFLOW_LIVEKIT_API_KEY", "livekit_api_key"
        ),
    )
    livekit_api_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LIVEKIT_API_SECRET", "VOXFLOW_LIVEKIT_API_SECRET", "livekit_api_secret"
        ),
    )
    # A caller's room token: only good for joining (and rejoining) within this time.
    livekit_token_ttl_s: int = Field(default=600, ge=30, le=6 * 3600)

    # Voice (`voxflow.voice`, docs/api.md). `auto`: the offline models (faster-whisper STT, hibari
    # TTS, loaded once per process) unless the cloud provider's key is set; `local` forces them.
    stt: Literal["auto", "local", "deepgram"] = "auto"
    tts: Literal["auto", "local", "cartesia", "piper"] = "auto"
    whisper_model: Literal["tiny.en", "base"] = "tiny.en"
    deepgram_api_key: SecretStr | None = None
    cartesia_api_key: SecretStr | None = None
    # Cloud voice (`voice.providers`): used with the keys above or an org's vault secrets
    # DEEPGRAM_API_KEY / CARTESIA_API_KEY. The base URLs exist for proxies and test fakes.
    deepgram_base_url: str = "https://api.deepgram.com/v1/listen"
    deepgram_model: str = "nova-3"
    cartesia_base_url: str = "https://api.cartesia.ai"
    cartesia_model: str = "sonic-3"
    cartesia_voice: str | None = Field(default=None, description="voice id; unset: the default")
    # How long one cloud STT/TTS attempt may take; after a failed attempt and its one retry the
    # call falls back to the offline model (when loaded).
    voice_cloud_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # An org's own OpenAI key (vault secret OPENAI_API_KEY) when VOXFLOW_LLM_MODEL is unset.
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None
    # Silence (s) that ends the caller's turn (silero VAD), and how long the caller must speak
    # over the agent before it stops (barge-in): 0.2 s stops it ~0.25 s after speech onset
    # (under the 300 ms a caller notices); longer ignores more coughs and back-channels.
    voice_min_silence_s: float = Field(default=0.4, ge=0.1, le=3.0)
    voice_min_interruption_s: float = Field(default=0.2, ge=0.1, le=5.0)
    # Audio WebSocket: a client sending more than this many seconds of audio per second,
    # sustained over voice_rate_window_s, is disconnected (1008).
    voice_max_audio_ratio: float = Field(default=1.0, gt=0, le=10)
    voice_rate_window_s: float = Field(default=3.0, gt=0, le=60)
    # Recordings of calls whose agent records (`record: true`), under data_dir/recordings:
    # deleted this many days after the call started (0 keeps them forever).
    recording_retention_days: int = Field(default=30, ge=0, le=36500)

    @field_validator("database_url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator(
        "generic_oauth_authorize_url",
        "generic_oauth_token_url",
        "generic_oauth_revocation_url",
        "generic_oauth_test_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # an empty variable means unset
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # an empty variable means unset
        if not value.startswith(("wss://", "ws://", "https://", "http://")):
            raise ValueError("must be a wss://, ws://, https:// or http:// URL")
        return value.rstrip("/")

    @field_validator("login_rate_limit", "api_rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '600/minute': {value!r}") from exc
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


class SettingsError(Exception):
    """A setting is wrong; the message is one line naming the variable."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")  # pydantic's, for our validators
        name = field.upper()  # a field read under LiveKit's own names reports that name
        if not name.startswith("LIVEKIT_"):
            name = f"VOXFLOW_{name}"
        raise SettingsError(f"{name}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
