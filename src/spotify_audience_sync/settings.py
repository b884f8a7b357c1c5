"""Settings: the only reader of the environment (``SPOTIFY_ADS_*`` variables and ``.env``).

Everything the connector needs to know about the outside world arrives through ``Settings``,
validated once at start, so a typo fails fast with the variable's name instead of as a 404
halfway through a sync. Fields are sectioned; later pipeline settings join the same class.
"""

from __future__ import annotations

import codecs
import ipaddress
import logging
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spotify_audience_sync.errors import ConfigError, UsageError

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_AUTHORIZE_URL",
    "DEFAULT_TOKEN_URL",
    "ENV_PREFIX",
    "Settings",
    "codec_name",
    "default_token_store",
    "env_name",
    "flag_name",
    "has_display",
    "load_settings",
    "log_format_setting",
]

ENV_PREFIX = "SPOTIFY_ADS_"
DEFAULT_API_BASE_URL = "https://api-partner.spotify.com/ads/v3"
DEFAULT_AUTHORIZE_URL = "https://accounts.spotify.com/authorize"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
APP_NAME = "spotify-audience-sync"

log = logging.getLogger(__name__)


def default_token_store() -> Path:
    """Where tokens live unless told otherwise: the user's config dir, never the work tree."""
    return platformdirs.user_config_path(APP_NAME) / "tokens.json"


def default_state_dir() -> Path:
    """Per-user data dir: survives reboots, unlike a temp dir; a container mounts a volume."""
    return platformdirs.user_data_path("spotify-audience-sync") / "state"


def codec_name(name: str) -> str:
    """Python's name for the text codec ``name`` ("Latin1" → "iso8859-1"); LookupError if
    Python knows no such text codec (rot13, base64 and the like transform bytes, not text)."""
    info = codecs.lookup(name.strip())
    if not info._is_text_encoding:
        raise LookupError(name)
    return info.name


def env_name(field: str) -> str:
    """The environment variable that sets ``field`` (what error messages must name)."""
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Validated configuration. Secrets are ``SecretStr`` so a repr never shows them."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,  # the docstrings below are the settings' documentation
    )

    # --- Spotify app credentials and the ad account ---------------------------------------
    client_id: str | None = Field(default=None, min_length=1)
    """Spotify app client id."""
    client_secret: SecretStr | None = None
    """Spotify app client secret."""
    refresh_token: SecretStr | None = None
    """For headless runs (containers, CI) that cannot do the browser login."""
    ad_account_id: UUID | None = None
    """The ad account (a UUID) whose audiences are synced."""

    # --- Endpoints (point them at the sandbox to rehearse) ---------------------------------
    api_base_url: str = DEFAULT_API_BASE_URL
    """Ads API base URL (point it at the sandbox to rehearse)."""
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    """OAuth authorize endpoint."""
    token_url: str = DEFAULT_TOKEN_URL
    """OAuth token endpoint."""
    upload_origins: str = ""
    """Comma-separated origins (https://host[:port]) that upload URLs from the API may point
    at besides Google Cloud Storage (https://storage.googleapis.com, always allowed) and a
    non-default API base URL's own origin (the sandbox). Any other upload host is refused
    before a byte is sent (exit 69). Only for a proxy or a test double you run."""
    endpoint_origins: str = ""
    """Origins (scheme://host[:port]), comma-separated, that the token, authorize and API URLs
    may point at besides https on a Spotify host and loopback (the sandbox): credentials are
    sent to no other place."""

    # --- Local state ------------------------------------------------------------------------
    token_store: Path = Field(default_factory=default_token_store)
    """Where tokens are kept (mode 0600). Default: the user config dir's
    spotify-audience-sync/tokens.json; /data/tokens.json in the container image."""

    # --- Identifier pipeline (flags of `prepare` and `sync` override these) ----------------
    default_region: str = "US"
    """ISO 3166 alpha-2 region for phone numbers written without a country code."""
    gmail_canonical: bool = False
    """Drop dots and +suffixes in gmail.com / googlemail.com local parts."""
    phone_validation: Literal["valid", "possible"] = "valid"
    """Keep phone numbers libphonenumber calls valid, or merely possible (length-plausible)."""
    layout: Literal["type-value", "wide"] = "type-value"
    """type-value: one 'type,value' row per identifier; wide: one column per type."""
    encoding: str = "utf-8"
    """Text encoding of CSV, TSV and NDJSON input: any codec Python knows (cp1252 for Windows
    and Excel exports, latin-1, utf-16), transcoded to UTF-8 as it is read."""
    delimiter: str | None = None
    """Field delimiter of CSV input (one character, or tab); unset: sniffed from the header
    line among comma, semicolon, tab and pipe."""
    country_column: str | None = None
    """Column holding each row's country, for phone numbers in national format; unset: a
    column with a well-known name (country, Country/Region, Land, Pays...) if there is one."""
    consent_column: str | None = None
    """Keep only rows whose value in this column is affirmative (yes, true, 1, subscribed,
    opted_in, granted...); unset: every row. Never applied by guess."""
    temp_dir: Path | None = None
    """Where hashed identifiers are staged for deduplication (default: the system temp dir)."""
    max_reject_rate: float = Field(default=0.5, gt=0, le=1)
    """A column with at least this share of its non-empty values rejected is refused by `sync`
    (exit 4, nothing changed) and warned about by `prepare`; 1 turns the check off."""
    database_url: SecretStr | None = None
    """Database that `--query` reads: postgresql://user:password@host/db, duckdb:///file.db."""

    log_format: Literal["auto", "human", "json"] = "auto"
    """human: progress and a summary on stderr; json: JSON lines on stdout; auto: by terminal."""

    # --- Sync ---------------------------------------------------------------------------------
    state_dir: Path = Field(default_factory=default_state_dir)
    """Where sync state and per-audience locks live. Default: the user data dir's
    spotify-audience-sync/state; /data/state in the container image."""
    state_url: SecretStr | None = None
    """Where sync state, run history and locks live: a directory (as state_dir), or
    postgresql://user:password@host/db[?schema=NAME] for machines that share no disk."""
    token_key: SecretStr | None = None
    """Fernet key(s), comma-separated, newest first: encrypts the refresh token kept in a
    state database. Generate one with `spotify-audience-sync auth new-key`."""
    upload_chunk_size: int = Field(default=8 * 1024 * 1024, ge=256 * 1024)
    """Bytes per upload request; a multiple of 256 KiB (GCS's rule)."""
    wait_timeout: float = Field(default=3600.0, ge=0)
    """Seconds to wait for Spotify to finish processing (it can take up to three days)."""
    lookalike: bool = False
    """Keep one LOOKALIKE audience seeded from each synced audience (created once, then kept)."""
    prune_orphans: bool = False
    """Delete the audiences an audience-column run or plan entry made whose group or entry is
    gone (only audiences this state recorded as its own; a LIVE one is kept with a warning)."""

    # --- Alerts and metrics (for runs nobody watches) ---------------------------------------
    notify_url: SecretStr | None = None
    """Webhook told about runs in one JSON POST (a Slack incoming webhook takes it as it is);
    a secret: shown by its host only."""
    notify_on: Literal["failure", "warning", "always"] = "warning"
    """Which runs notify: failure (exit not 0), warning (that, or any warning), always."""
    metrics_file: Path | None = None
    """Write Prometheus metrics here (textfile-collector format, replaced atomically)."""
    pushgateway_url: str | None = None
    """Push Prometheus metrics to this Pushgateway, grouped by job and audience."""

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be an ISO 3166 alpha-2 region libphonenumber knows, e.g. US")
        return region

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        names = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
        if value is None:
            return None
        char = names.get(value.casefold(), value)
        if len(char) != 1 or char in '"\r\n':
            raise ValueError("must be one character, or tab, comma, semicolon or pipe")
        return char

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            return codec_name(value)
        except LookupError:
            raise ValueError("not a text encoding Python knows (e.g. utf-8, cp1252)") from None

    @field_validator("upload_chunk_size")
    @classmethod
    def _chunk(cls, value: int) -> int:
        if value % (256 * 1024):
            raise ValueError("must be a multiple of 262144 (256 KiB)")
        return value

    @field_validator("api_base_url", "authorize_url", "token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://host/path")
        return value.strip().rstrip("/")

    @field_validator("notify_url", "pushgateway_url")
    @classmethod
    def _optional_http_url(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or not str(text).strip():
            return None
        parts = urlsplit(str(text).strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://host/path")
        return value

    @field_validator("upload_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        origins = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        for item in origins:
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError("must be comma-separated origins such as https://host:8443")
        return ",".join(origins)

    @field_validator("client_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _trusted_endpoints(self) -> Settings:
        allowed = parse_origins(self.endpoint_origins)
        for name in ("token_url", "api_base_url", "authorize_url"):
            problem = endpoint_problem(getattr(self, name), allowed)
            if problem:
                raise ValueError(f"{env_name(name)}: {problem}")
        return self

    def require(self, *fields: str) -> None:
        """Fail with ConfigError naming every missing variable among ``fields``."""
        missing = [env_name(f) for f in fields if getattr(self, f) is None]
        if missing:
            raise ConfigError(f"missing setting: {', '.join(missing)} (environment or .env)")

    @property
    def state_location(self) -> str:
        """The state backend's URL: ``state_url`` when set, else the ``state_dir`` directory."""
        if self.state_url is not None and self.state_url.get_secret_value().strip():
            return self.state_url.get_secret_value().strip()
        return str(self.state_dir)

    @property
    def account_id(self) -> str:
        """The ad account as the API wants it; ConfigError when it is not set."""
        self.require("ad_account_id")
        return str(self.ad_account_id)


def flag_name(field: str) -> str:
    """The command-line flag that sets ``field``, where one does (``--chunk-size``)."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


_FLAGS = {"upload_chunk_size": "--chunk-size"}


def _describe(error: Any, flags: Collection[str] = ()) -> str:
    """One ValidationError entry → ``SPOTIFY_ADS_X: reason``, or ``--flag: reason`` when the
    value came from that flag (never the offending value)."""
    reason = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not error.get("loc"):  # a check across fields names its variable itself
        return reason
    field = str(error["loc"][0])
    if error.get("type") == "uuid_parsing":
        reason = "must be a UUID like 12345678-1234-1234-1234-123456789abc"
    return f"{flag_name(field) if field in flags else env_name(field)}: {reason}"


def load_settings(
    _env_file: Path | str | None = ".env", _flags: Collection[str] = (), **overrides: Any
) -> Settings:
    """Build Settings from env, ``.env`` and ``overrides`` (CLI flags; ``None`` = not given).

    pydantic's ValidationError becomes one ConfigError naming each bad variable; a bad value
    of a field in ``_flags`` (those given as command-line flags) is named by its flag, and
    when only flags are at fault it is a UsageError (exit 2), as click's own flag errors are.
    """
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    flags = {field for field in _flags if field in given}
    given["_env_file"] = trusted_env_file(_env_file)
    try:
        return Settings(**given)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_describe(e, flags) for e in errors)
        if all(e.get("loc") and str(e["loc"][0]) in flags for e in errors):
            raise UsageError(f"invalid value: {problems}") from None
        raise ConfigError(f"invalid setting: {problems}") from None


#: Set (to anything) to run without the C extension: same results, polars does the work. An
#: escape hatch for a suspect build, not a setting of the connector (hence no SPOTIFY_ADS_).
NO_NATIVE_ENV = "SPOTIFY_AUDIENCE_SYNC_NO_NATIVE"


def native_disabled() -> bool:
    """Whether :data:`NO_NATIVE_ENV` asks for the pure-Python engines (the pipeline applies it
    through ``identifiers.hashing.use_native``)."""
    return bool(os.environ.get(NO_NATIVE_ENV))


class _LogFormatOnly(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )
    log_format: str = "auto"


def log_format_setting() -> str:
    """``SPOTIFY_ADS_LOG_FORMAT`` (environment, else ``.env``), read alone: for an error met
    before the other settings could be validated; ``auto`` if it cannot be read."""
    try:
        return _LogFormatOnly().log_format
    except (ValidationError, OSError, UnicodeDecodeError):
        return "auto"


def has_display() -> bool:
    """Whether a graphical session is there to open a browser in (``DISPLAY``, Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def named_variables(names: Iterable[str]) -> dict[str, str]:
    """The environment variables a plan names (``database_url_env``): set ones only.

    Read here because this module is the one reader of the environment; a plan holds a
    variable's name, never a URL with a password.
    """
    return {name: os.environ[name] for name in names if os.environ.get(name)}


#: Where compiled phone tables are kept between runs (set empty: no cache). A process knob
#: for tests, benchmarks and read-only containers, outside the ``SPOTIFY_ADS_`` settings.
CACHE_DIR_ENV = "SPOTIFY_AUDIENCE_SYNC_CACHE_DIR"


def cache_dir_override() -> str | None:
    """``SPOTIFY_AUDIENCE_SYNC_CACHE_DIR`` as set: None when unset, ``""`` for no cache."""
    return os.environ.get(CACHE_DIR_ENV)


# --- where credentials may go, and which files may say so -----------------------------------
SPOTIFY_DOMAIN = "spotify.com"


def parse_origins(text: str) -> frozenset[str]:
    """``SPOTIFY_ADS_ENDPOINT_ORIGINS`` as a set of ``scheme://host[:port]`` (lower case)."""
    origins = set()
    for item in text.split(","):
        parts = urlsplit(item.strip().rstrip("/"))
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme.lower()}://{parts.netloc.lower()}")
    return frozenset(origins)


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost: the machine itself (the sandbox)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(url: str, allowed: Collection[str] = ()) -> str | None:
    """Why the client secret and tokens must not go to ``url``, or None when they may.

    https on a Spotify host, any loopback address (the sandbox), or an origin named in
    ``SPOTIFY_ADS_ENDPOINT_ORIGINS``: a ``.env`` or a typo cannot send them elsewhere.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if f"{parts.scheme.lower()}://{parts.netloc.lower()}" in allowed or is_loopback(host):
        return None
    spotify = host == SPOTIFY_DOMAIN or host.endswith("." + SPOTIFY_DOMAIN)
    if spotify and parts.scheme == "https":
        return None
    what = "plain http" if spotify else f"host {host or '?'} is not Spotify's"
    return (
        f"{what}: credentials go only to https on *.{SPOTIFY_DOMAIN} or to loopback (the "
        f"sandbox); name the origin in {env_name('endpoint_origins')} to allow it"
    )


def trusted_env_file(path: Path | str | None) -> Path | str | None:
    """``path`` if a ``.env`` there may configure this run, else None with a warning.

    A ``.env`` decides where the refresh token and client secret are sent, so one written by
    someone else (another owner, or a file group or others can write) is ignored, as ssh
    ignores such a config and git such a repository.
    """
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return path  # none there: nothing to trust
    owner_ok = info.st_uid in (os.geteuid(), 0)
    if owner_ok and not info.st_mode & 0o022:
        return path
    why = "owned by another user" if not owner_ok else "writable by group or others"
    shown = os.path.abspath(path)
    log.warning("ignoring %s: it is %s (chmod go-w, or chown it to yourself)", shown, why)
    return None
