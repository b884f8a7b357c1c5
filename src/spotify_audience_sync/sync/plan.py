"""Sync plans: a YAML file of named syncs, validated before anything is read or sent.

A marketing team keeps many audiences; a plan lists them once, and `run PLAN` runs them (or the
ones an orchestrator selects by name or index). Each sync has a source (a file, or a query on a
database whose URL is in an environment variable the plan *names*: a plan is committed to a
repository, a password is not), the column mapping and normalization, the audience (a name, an
id, or an audience column with a name template) and the sync's options. An error names the sync
and the field, so a plan of forty syncs says which one is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spotify_audience_sync.errors import ConfigError, InputNotFoundError
from spotify_audience_sync.segment.split import DEFAULT_MAX_GROUPS

__all__ = [
    "Plan",
    "PlanSync",
    "check_distinct_audiences",
    "load_plan",
    "parse_plan",
    "plan_schema",
    "select_syncs",
]

#: Sync names become Airflow task map keys, Kubernetes labels and log fields: keep them plain.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$"
_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SyncSettings(BaseModel):
    """How to sync: the `sync` flags of the same names."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    wait: bool = True
    """Wait for Spotify to finish processing (false: as `--no-wait`)."""
    wait_timeout: float | None = Field(default=None, ge=0)
    """Seconds to wait for processing [default: SPOTIFY_ADS_WAIT_TIMEOUT]."""
    allow_shrink: bool = False
    """Allow fewer than half the last sync's identifiers."""
    force: bool = False
    """Upload even if the set is unchanged since the last sync."""
    max_reject_rate: float | None = Field(default=None, gt=0, le=1)
    """Refuse a column with at least this share of its values rejected."""
    max_audiences: int = Field(default=DEFAULT_MAX_GROUPS, ge=1)
    """With `audience_column`: refuse more distinct values than this."""


class PlanSync(BaseModel):
    """One named sync of a plan."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    """Unique in the plan: lower case letters, digits, '-', '_', '.'; at most 63 characters."""
    # --- the source: a file, or a query ------------------------------------------------------
    input: str | None = None
    """A file (CSV/TSV[.gz], NDJSON, Parquet), relative to the plan's folder."""
    format: Literal["auto", "csv", "tsv", "ndjson", "parquet"] = "auto"
    """Input format; 'auto' goes by the file name."""
    query: str | None = None
    """SQL whose rows are the segment; syncs with the same query and database are read once."""
    database_url_env: Annotated[str, Field(pattern=_ENV_PATTERN)] | None = None
    """The name of the environment variable holding the database URL for `query`."""
    encoding: str | None = None
    """Text encoding of a CSV, TSV or NDJSON input [default: SPOTIFY_ADS_ENCODING]."""
    # --- columns and normalization -----------------------------------------------------------
    email_column: str | list[str] | None = None
    """A column, or a list of columns, of emails (every valid value of each is uploaded)."""
    phone_column: str | list[str] | None = None
    device_id_column: str | list[str] | None = None
    delimiter: str | None = None
    """CSV field delimiter; unset: sniffed from the header line."""
    country_column: str | None = None
    """Column holding each row's country, for phones in national format."""
    consent_column: str | None = None
    """Keep only rows whose value here is affirmative (yes, true, 1, subscribed...)."""
    exclude: list[str] = Field(default_factory=list)
    """Suppression lists (files, relative to the plan's folder): never uploaded."""
    default_region: str | None = None
    """Region (ISO 3166 alpha-2) for phone numbers without a country code."""
    gmail_canonical: bool | None = None
    phone_validation: Literal["valid", "possible"] | None = None
    layout: Literal["type-value", "wide"] | None = None
    # --- the audience ----------------------------------------------------------------------
    audience_name: str | None = Field(default=None, min_length=2, max_length=80)
    """Create or replace the audience so named."""
    audience_id: str | None = None
    """Replace this audience."""
    audience_column: str | None = None
    """One audience per value of this column; needs `audience_name_template`."""
    audience_name_template: str | None = Field(default=None, pattern=r"\{value\}")
    """Each group's audience name, `{value}` replaced by the column's value."""
    description: str | None = Field(default=None, max_length=80)
    """Description of a new audience."""
    ad_account_id: str | None = None
    """Ad account [default: SPOTIFY_ADS_AD_ACCOUNT_ID]."""
    lookalike: bool | None = None
    """Keep one LOOKALIKE audience seeded from each audience [default: SPOTIFY_ADS_LOOKALIKE]."""
    options: SyncSettings = Field(default_factory=SyncSettings)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 region libphonenumber knows")
        return region

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        from spotify_audience_sync.settings import codec_name

        try:
            return None if value is None else codec_name(value)
        except LookupError:
            raise ValueError(f"{value!r} is not a text encoding Python knows") from None

    @field_validator("input", "query")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _one_source_one_audience(self) -> PlanSync:
        if (self.input is None) == (self.query is None):
            raise ValueError("give exactly one of 'input' or 'query'")
        if self.query is not None and self.database_url_env is None:
            raise ValueError("'query' needs 'database_url_env' (the name of a variable)")
        if self.input is not None and self.database_url_env is not None:
            raise ValueError("'database_url_env' is for 'query', not 'input'")
        named = [key for key in ("audience_name", "audience_id") if getattr(self, key)]
        if self.audience_column is not None and named:
            raise ValueError("'audience_column' names its audiences by 'audience_name_template'")
        if not named and self.audience_column is None:
            raise ValueError(
                "name the audience with 'audience_name', 'audience_id' (both: the audience of "
                "that id, renamed to that name) or 'audience_column'"
            )
        if bool(self.audience_column) != bool(self.audience_name_template):
            raise ValueError("'audience_column' and 'audience_name_template' go together")
        return self

    def source_key(self, folder: Path) -> tuple[str, ...]:
        """Syncs with equal keys read the same rows: they share one read."""
        if self.query is not None:
            return ("query", " ".join(self.query.split()), str(self.database_url_env))
        return ("input", str(self.input_path(folder)), self.format)

    def input_path(self, folder: Path) -> Path:
        assert self.input is not None
        path = Path(self.input)
        return path if path.is_absolute() else folder / path

    def exclude_paths(self, folder: Path) -> list[Path]:
        """The suppression lists, relative paths taken from the plan's folder."""
        return [p if p.is_absolute() else folder / p for p in map(Path, self.exclude)]


class Plan(BaseModel):
    """A list of named syncs (`spotify-audience-sync run PLAN`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    version: Literal[1] = 1
    """The plan format's version."""
    syncs: list[PlanSync] = Field(min_length=1)
    """The syncs, run in this order (or N at once with --parallel)."""

    @field_validator("syncs")
    @classmethod
    def _unique_names(cls, syncs: list[PlanSync]) -> list[PlanSync]:
        seen: set[str] = set()
        for sync in syncs:
            if sync.name in seen:
                raise ValueError(f"two syncs are named {sync.name!r}")
            seen.add(sync.name)
        claims = [
            (f"sync {sync.name!r}", sync.ad_account_id or "", kind, value)
            for sync in syncs
            for kind, value in (("name", sync.audience_name), ("id", sync.audience_id))
            if value
        ]
        problem = _first_collision(claims)
        if problem:
            raise ValueError(problem)
        return syncs


#: One claim on an audience: (who, ad account or "" for the default, "name" or "id", value).
Claim = tuple[str, str, str, str]


def _audience_key(kind: str, value: str) -> str:
    """What makes two claims one audience: an id in any case, a name as Spotify compares it
    (exactly, after the surrounding whitespace every name loses)."""
    return value.strip().lower() if kind == "id" else value.strip()


def _first_collision(claims: list[Claim]) -> str | None:
    seen: dict[tuple[str, str, str], str] = {}
    for who, account, kind, value in claims:
        key = (account.strip().lower(), kind, _audience_key(kind, value))
        if key in seen:
            what = f"audience {'id' if kind == 'id' else 'named'} {value.strip()!r}"
            return (
                f"{seen[key]} and {who} both sync the {what}: the later would replace the "
                "earlier's members; give each its own audience"
            )
        seen[key] = who
    return None


def check_distinct_audiences(claims: list[Claim]) -> None:
    """Refuse (ConfigError, 78) two syncs, or two audience-column groups, that would write one
    audience: the one run last would silently replace the other's members.

    Each claim is ``(who, ad_account_id or "", "name" | "id", value)``; ``who`` names the sync
    or the group (``"sync 'nl' value 'DE'"``) and both are named in the message. The plan
    checks its literal names and ids when it is loaded; a run calls this again once an
    audience column's names are rendered, before the first write.
    """
    problem = _first_collision(claims)
    if problem:
        raise ConfigError(problem)


def plan_schema() -> dict[str, Any]:
    """The plan's JSON Schema (in `spec` and connector.yaml)."""
    return Plan.model_json_schema()


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """'sync 'churn' (syncs[1]), field 'query'' from a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "syncs" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        syncs = data.get("syncs") if isinstance(data, dict) else None
        if isinstance(syncs, list) and index < len(syncs) and isinstance(syncs[index], dict):
            name = syncs[index].get("name")
        label = f"sync {name!r}" if isinstance(name, str) else "sync"
        fields = ".".join(str(part) for part in loc[2:])
        return f"{label} (syncs[{index}])" + (f", field {fields!r}" if fields else "")
    return "field " + repr(".".join(str(part) for part in loc)) if loc else "the plan"


def parse_plan(text: str, source: str) -> Plan:
    """Validate a plan's YAML text; a ConfigError names the sync and the field of each problem."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a plan is a mapping with a 'syncs' list")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{_where(data, tuple(error['loc']))}: {message}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputNotFoundError(f"{path}: no such plan file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the plan ({exc})") from exc
    return parse_plan(text, str(path))


def select_syncs(plan: Plan, only: list[str], index: int | None) -> list[PlanSync]:
    """The syncs to run: all, those named by ``only``, or the ``index``-th (0-based)."""
    if index is not None:
        if only:
            raise ConfigError("give --only or --index, not both")
        if not 0 <= index < len(plan.syncs):
            raise ConfigError(f"--index {index}: the plan has syncs 0 to {len(plan.syncs) - 1}")
        return [plan.syncs[index]]
    if not only:
        return list(plan.syncs)
    names = {sync.name for sync in plan.syncs}
    unknown = [name for name in only if name not in names]
    if unknown:
        raise ConfigError(
            f"--only {', '.join(unknown)}: no such sync; the plan has {', '.join(sorted(names))}"
        )
    return [sync for sync in plan.syncs if sync.name in only]
