"""Flags and helpers shared by the commands: segment options, settings, the run's output."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from spotify_audience_sync.segment.limits import DEFAULT_MAX_GROUPS
from spotify_audience_sync.spotify.redact import warn_password_option

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import LogFormat, Output
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.options import Overrides

F = TypeVar("F", bound=Callable[..., Any])


def _region(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Accept only regions libphonenumber knows, so a typo fails before any work starts."""
    if value is None:
        return None
    import phonenumbers

    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(
            f"{value!r} is not an ISO 3166 alpha-2 region libphonenumber knows"
        )
    return region


def _encoding(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Accept only codecs Python knows, so a typo fails before any work starts."""
    if value is None:
        return None
    from spotify_audience_sync.settings import codec_name

    try:
        return codec_name(value)
    except LookupError:
        raise click.BadParameter(
            f"{value!r} is not a text encoding Python knows (e.g. utf-8, cp1252, latin-1, utf-16)"
        ) from None


def make_output(
    log_format: LogFormat | None, quiet: bool, verbose: int, *, stdout_is_data: bool = False
) -> Output:
    """The run's reporter, kept on the click context so errors reach it too."""
    from spotify_audience_sync.cli.output import Output, activate

    verbosity = -1 if quiet else min(verbose, 1)
    output = Output(log_format or "auto", verbosity, stdout_is_data=stdout_is_data)
    output.capture_library_logs()
    activate(output)
    click.get_current_context().find_root().obj = output
    return output


_SEGMENT_OPTIONS: list[Callable[[F], F]] = [
    click.argument("input_path", metavar="[INPUT]", required=False),
    click.option(
        "--query", metavar="SQL", help="Read the segment from this SQL query instead of INPUT."
    ),
    click.option(
        "--database-url",
        metavar="URL",
        callback=warn_password_option,
        help="Database for --query: postgresql://…, duckdb:///file.db or duckdb:// "
        "[default: SPOTIFY_ADS_DATABASE_URL].",
    ),
    click.option(
        "--format",
        "fmt",
        type=click.Choice(["auto", "csv", "tsv", "ndjson", "parquet"]),
        default="auto",
        show_default=True,
        help="Input format; 'auto' goes by the file name (.csv, .tsv, .ndjson/.jsonl, "
        ".parquet, each optionally .gz), CSV otherwise.",
    ),
    click.option(
        "--encoding",
        callback=_encoding,
        metavar="NAME",
        help="Text encoding of a CSV, TSV or NDJSON input, any Python codec: cp1252 (Windows, "
        "Excel), latin-1, utf-16... [default: utf-8].",
    ),
    click.option(
        "--delimiter",
        metavar="CHAR",
        help="CSV field delimiter: one character, or tab [default: sniffed from the header "
        "line among , ; tab |].",
    ),
    click.option(
        "--email-column",
        metavar="C",
        multiple=True,
        help="Column holding emails; repeat for several [default: every column named like "
        "email, E-Mail, Courriel, Correo, email_sha256...].",
    ),
    click.option(
        "--phone-column",
        metavar="C",
        multiple=True,
        help="Column holding phone numbers; repeat for several [default: every column named "
        "like phone, mobile, Telefon, Téléphone, Móvil, phone_sha256...].",
    ),
    click.option(
        "--device-id-column",
        metavar="C",
        multiple=True,
        help="Column holding IDFA/GAID; repeat for several [default: device_id, idfa, gaid...].",
    ),
    click.option(
        "--country-column",
        metavar="C",
        help="Column holding each row's country, for phones in national format [default: a "
        "column named country, Country/Region, Land, Pays...].",
    ),
    click.option(
        "--consent-column",
        metavar="C",
        help="Keep only rows whose value here is yes, true, 1, subscribed, opted_in, "
        "granted... [default: every row].",
    ),
    click.option(
        "--exclude",
        metavar="PATH",
        multiple=True,
        help="Suppression list (any input format, raw or SHA-256, or type,value): its "
        "identifiers are never uploaded. Repeatable.",
    ),
    click.option(
        "--exclude-query",
        metavar="SQL",
        help="Suppression list from this SQL query on --database-url.",
    ),
    click.option(
        "--default-region",
        callback=_region,
        metavar="CC",
        help="Region (ISO 3166 alpha-2) for phone numbers written without a country code "
        "[default: US].",
    ),
    click.option(
        "--gmail-canonical",
        is_flag=True,
        default=None,
        help="Drop dots and +suffixes in gmail.com / googlemail.com local parts.",
    ),
    click.option(
        "--phone-validation",
        type=click.Choice(["valid", "possible"]),
        help="Keep numbers libphonenumber calls valid, or merely possible (length-plausible) "
        "[default: valid].",
    ),
    click.option(
        "--layout",
        type=click.Choice(["type-value", "wide"]),
        help="type-value: one 'type,value' row per identifier; wide: one column per type "
        "[default: type-value].",
    ),
    click.option(
        "--max-reject-rate",
        type=float,
        metavar="R",
        help="Refuse (sync) or warn about (prepare) a column with at least this share of its "
        "non-empty values rejected; 1 turns it off [default: 0.5].",
    ),
    click.option(
        "--report", "report_path", metavar="PATH", help="Write a JSON report (counts only)."
    ),
    click.option(
        "--rejects",
        "rejects_path",
        metavar="PATH",
        help="Write one CSV line per rejected value: line (or row), column, reason; never "
        "the value (mode 0600).",
    ),
    click.option(
        "--temp-dir",
        metavar="DIR",
        help="Where hashed (never raw) identifiers are staged for deduplication "
        "[default: system temp].",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["auto", "human", "json"]),
        help="human: progress bars (on a terminal) and a summary on stderr; json: one JSON "
        "object per line on stdout; auto: human on a terminal, else json "
        "[default: auto].",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and the final result."),
    click.option("-v", "--verbose", count=True, help="Also report each step as it happens."),
]


def segment_options(command: F) -> F:
    """The input and identifier flags shared by `prepare` and `sync`."""
    for option in reversed(_SEGMENT_OPTIONS):
        command = option(command)
    return command


def require_one_input(input_path: str | None, query: str | None) -> None:
    """Exactly one of INPUT and --query, else a usage error (exit 2)."""
    if (input_path is None) == (query is None):
        raise click.UsageError("give exactly one of INPUT or --query SQL")


def load_cli_settings(**overrides: Any) -> Settings:
    """Settings from env / .env with the flags that were given laid over them.

    A bad flag value is named by the flag the user typed (exit 2), not by its variable.
    """
    from spotify_audience_sync.settings import load_settings

    return load_settings(_flags=overrides.keys(), **overrides)


def uuid_argument(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An audience or ad account id must be a UUID: checked here, not by a round trip to
    Spotify that answers 4xx (exit 69) for a typo."""
    if value is None:
        return None
    import uuid

    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an id: ids are UUIDs like 12345678-1234-1234-1234-123456789abc"
        ) from None


def flag_overrides(fmt: Format, *, no_wait: bool = False, **options: Any) -> Overrides:
    """The run options the flags gave, typed; ``options`` are named as the fields of
    :class:`~spotify_audience_sync.sync.options.Overrides` (click's parameter names)."""
    from spotify_audience_sync.sync.options import Overrides

    # A repeatable flag not given is an empty tuple: "not given", as None is.
    given: dict[str, Any] = {
        k: (v or None) if isinstance(v, tuple) else v for k, v in options.items()
    }
    return Overrides(format=fmt, wait=False if no_wait else None, **given)


def cli_settings(
    given: Overrides | None,
    log_format: LogFormat | None,
    state_url: str | None = None,
    state_dir: str | None = None,
) -> Settings:
    """Settings from env / .env with the flags that set a setting laid over them (a bad value
    is named by its flag, exit 2)."""
    backed = given.settings() if given is not None else {}
    return load_cli_settings(
        **backed, log_format=log_format, **state_settings(state_url, state_dir)
    )


_SERVICE_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--prune-orphans",
        is_flag=True,
        default=None,
        help="Delete audiences this state made for an --audience-column value or plan sync "
        "that is gone (a LIVE one is kept, with a warning) [default: report them only].",
    ),
    click.option(
        "--notify-url",
        metavar="URL",
        help="POST one JSON message (a Slack webhook takes it) about the run here "
        "[default: SPOTIFY_ADS_NOTIFY_URL].",
    ),
    click.option(
        "--notify-on",
        type=click.Choice(["failure", "warning", "always"]),
        help="Which runs notify [default: warning: a failure or any warning].",
    ),
    click.option(
        "--metrics-file",
        metavar="PATH",
        help="Write Prometheus metrics of the run here (textfile-collector format).",
    ),
    click.option(
        "--pushgateway-url",
        metavar="URL",
        help="Push Prometheus metrics of the run to this Pushgateway.",
    ),
]


def service_options(command: F) -> F:
    """What `sync` and `run` keep in step and report to machines: orphans, alerts, metrics."""
    for option in reversed(_SERVICE_OPTIONS):
        command = option(command)
    return command


def state_options(command: F) -> F:
    """``--state-url`` and its older alias for a directory, ``--state-dir``."""
    command = click.option(
        "--state-dir", metavar="DIR", help="Keep state, history and locks in this directory."
    )(command)
    return click.option(
        "--state-url",
        metavar="URL",
        callback=warn_password_option,
        help="Where state, history and locks live: a directory, or postgresql://… "
        "[default: SPOTIFY_ADS_STATE_URL, else SPOTIFY_ADS_STATE_DIR].",
    )(command)


def state_settings(state_url: str | None, state_dir: str | None) -> dict[str, str | None]:
    """The settings the state flags override: a --state-dir flag beats SPOTIFY_ADS_STATE_URL."""
    if state_url and state_dir:
        raise click.UsageError("give at most one of --state-url and --state-dir")
    return {"state_url": state_url or state_dir, "state_dir": state_dir}


#: ``--max-audiences``, shared by `prepare` and `sync` (their --audience-column runs).
max_audiences_option = click.option(
    "--max-audiences",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_GROUPS,
    show_default=True,
    help="Refuse an --audience-column with more distinct values than this.",
)
