"""Flags and helpers shared by the commands: segment options, settings, the run's output."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from spotify_audience_sync.spotify.redact import warn_password_option

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import LogFormat, Output
    from spotify_audience_sync.segment.pipeline import PrepareOptions
    from spotify_audience_sync.segment.sources import Source
    from spotify_audience_sync.settings import Settings

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
    from spotify_audience_sync.cli.output import Output

    verbosity = -1 if quiet else min(verbose, 1)
    output = Output(log_format or "auto", verbosity, stdout_is_data=stdout_is_data)
    output.capture_library_logs()
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
    click.option("--email-column", metavar="C", help="Column holding emails [default: email]."),
    click.option(
        "--phone-column", metavar="C", help="Column holding phone numbers [default: phone]."
    ),
    click.option(
        "--device-id-column", metavar="C", help="Column holding IDFA/GAID [default: device_id]."
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


def load_cli_settings(**flags: Any) -> Settings:
    """Settings from env / .env with the flags that were given laid over them.

    A bad flag value is named by the flag the user typed (exit 2), not by its variable.
    """
    from spotify_audience_sync.settings import load_settings

    return load_settings(_flags=flags.keys(), **flags)


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


def prepare_options(settings: Settings, flags: dict[str, Any]) -> PrepareOptions:
    """The pipeline options: flag if given, else setting, else default."""
    from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
    from spotify_audience_sync.segment.pipeline import PrepareOptions

    requested = {
        kind: flags[name]
        for kind, name in (
            (IdentifierType.EMAIL, "email_column"),
            (IdentifierType.PHONE, "phone_column"),
            (IdentifierType.DEVICE_ID, "device_id_column"),
        )
        if flags.get(name)
    }
    return PrepareOptions(
        columns=requested,
        normalize=NormalizeOptions(
            gmail_canonical=settings.gmail_canonical,
            default_region=settings.default_region,
            phone_validation=settings.phone_validation,
        ),
        layout=settings.layout,
        temp_dir=str(settings.temp_dir) if settings.temp_dir else None,
        max_reject_rate=settings.max_reject_rate,
        rejects_path=flags.get("rejects_path"),
    )


def announce_columns(out: Output, source: Source, options: PrepareOptions) -> PrepareOptions:
    """Resolve the identifier columns, say which were chosen, return the options using them.

    A JSON event ``columns`` (type → column) and a summary line; a column whose name looks
    like data is shown by its position.
    """
    import dataclasses

    from spotify_audience_sync.segment.columns import column_label, resolve_columns

    columns = resolve_columns(source.name, source.columns, options.columns)
    shown = {
        kind.key: column_label(name, source.columns.index(name) + 1)
        for kind, name in columns.items()
    }
    out.event("columns", columns=shown)
    out.summary(
        "columns: "
        + ", ".join(
            f"{kind.key} from {shown[kind.key]!r}"
            if shown[kind.key] == name
            else f"{kind.key} from {shown[kind.key]}"
            for kind, name in columns.items()
        )
    )
    return dataclasses.replace(options, columns=columns)


SETTING_FLAGS = (
    "log_format",
    "default_region",
    "gmail_canonical",
    "phone_validation",
    "layout",
    "encoding",
    "temp_dir",
    "database_url",
    "max_reject_rate",
)


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


def state_settings(flags: dict[str, Any]) -> dict[str, Any]:
    """The settings the state flags override: a --state-dir flag beats SPOTIFY_ADS_STATE_URL."""
    if flags.get("state_url") and flags.get("state_dir"):
        raise click.UsageError("give at most one of --state-url and --state-dir")
    url = flags.get("state_url") or flags.get("state_dir")
    return {"state_url": url, "state_dir": flags.get("state_dir")}


#: ``--max-audiences``, shared by `prepare` and `sync` (their --audience-column runs).
max_audiences_option = click.option(
    "--max-audiences",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Refuse an --audience-column with more distinct values than this.",
)
