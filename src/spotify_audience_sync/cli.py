"""The command line: parse flags, call the library, turn errors into messages and exit codes.

Thin on purpose: every command's work lives in a library module so it can be used and tested
without the CLI. Heavy libraries (polars, numpy, authlib) are imported by the command that
needs them, and command groups of other modules load on first use: `--help` and a scheduler's
short commands start in milliseconds, and the 1 s of imports is not charged to every run.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from spotify_audience_sync import __version__
from spotify_audience_sync.errors import SyncError

if TYPE_CHECKING:
    from spotify_audience_sync.output import LogFormat, Output
    from spotify_audience_sync.pipeline import PrepareOptions
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sources import Format

F = TypeVar("F", bound=Callable[..., Any])

# Commands defined in other modules, loaded when invoked or listed: name → "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "auth": "spotify_audience_sync.cli_api:auth",
    "audiences": "spotify_audience_sync.cli_api:audiences",
    "sandbox": "spotify_audience_sync.cli_api:sandbox",
    "sync": "spotify_audience_sync.cli_sync:sync",
    "demo": "spotify_audience_sync.cli_sync:demo",
    "spec": "spotify_audience_sync.cli_connector:spec",
    "check": "spotify_audience_sync.cli_connector:check",
}


class Group(click.Group):
    """A click group that turns a SyncError into a one-line message and its exit code.

    It also loads the commands in :data:`LAZY_COMMANDS` on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncError as exc:
            self._fail(ctx, type(exc).__name__, str(exc), exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: its message may quote data, so it is not printed
            if ctx.params.get("debug"):
                raise
            message = (
                f"internal error ({type(exc).__name__}); details are withheld because they may "
                "contain data. Rerun with --debug for the traceback, and please report it."
            )
            self._fail(ctx, type(exc).__name__, message, 1)

    @staticmethod
    def _fail(ctx: click.Context, kind: str, message: str, code: int) -> None:
        click.echo(f"error: {message}", err=True)
        output: Output | None = ctx.obj  # set by make_output, when a command made one
        if output is not None:
            output.error(kind, message, code)
        ctx.exit(code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spotify-audience-sync")
@click.option(
    "--debug",
    is_flag=True,
    hidden=True,
    help="Show the traceback of an unexpected error (it may contain data: never in production).",
)
def main(debug: bool) -> None:
    """Keep a Spotify Ads Manager customer-list audience equal to a segment of your data."""


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


def make_output(
    log_format: LogFormat | None, quiet: bool, verbose: int, *, stdout_is_data: bool = False
) -> Output:
    """The run's reporter, kept on the click context so errors reach it too."""
    from spotify_audience_sync.output import Output

    verbosity = -1 if quiet else min(verbose, 1)
    output = Output(log_format or "auto", verbosity, stdout_is_data=stdout_is_data)
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
        "--report", "report_path", metavar="PATH", help="Write a JSON report (counts only)."
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
    """Settings from env / .env with the flags that were given laid over them."""
    from spotify_audience_sync.settings import load_settings

    return load_settings(**flags)


def prepare_options(settings: Settings, flags: dict[str, Any]) -> PrepareOptions:
    """The pipeline options: flag if given, else setting, else default."""
    from spotify_audience_sync.identifiers import IdentifierType, NormalizeOptions
    from spotify_audience_sync.pipeline import PrepareOptions

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
    )


SETTING_FLAGS = (
    "log_format",
    "default_region",
    "gmail_canonical",
    "phone_validation",
    "layout",
    "temp_dir",
    "database_url",
)


@main.command()
@segment_options
@click.option(
    "-o", "--output", required=True, help="Where to write the upload file ('-' for stdout)."
)
def prepare(
    input_path: str | None,
    output: str,
    fmt: Format,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **flags: Any,
) -> None:
    """Normalize, hash and deduplicate a segment into the file Spotify matches against.

    INPUT is a CSV (optionally gzip), TSV, NDJSON or Parquet file, or '-' for stdin; or
    give --query SQL and --database-url instead. Nothing is sent anywhere: this is the
    offline half of `sync`.
    """
    from spotify_audience_sync.pipeline import prepare_segment
    from spotify_audience_sync.report import write_json
    from spotify_audience_sync.warehouse import open_input

    require_one_input(input_path, flags.get("query"))
    settings = load_cli_settings(**{k: flags.get(k) for k in SETTING_FLAGS})
    out = make_output(settings.log_format, quiet, verbose, stdout_is_data=output == "-")
    options = prepare_options(settings, flags)
    with (
        open_input(input_path, fmt, flags.get("query"), settings.database_url) as source,
        out.phase("read") as progress,
    ):
        prepared = prepare_segment(source, options, on_progress=progress)
    with prepared:
        prepared.report.output = "<stdout>" if output == "-" else output
        if output == "-":
            prepared.write_to(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            prepared.write_file(output)
    if report_path:
        write_json(report_path, prepared.report.to_dict())
    out.summary(prepared.report.summary())
    out.event("result", command="prepare", report=prepared.report.to_dict())
