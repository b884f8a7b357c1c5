"""One resolver: settings (environment, ``.env``) ← plan fields ← flags, into typed options.

Every option a run takes is a row of :data:`OPTIONS`: its name here, the setting it falls back
to, the plan field and the command-line flag that set it. A command, a plan sync and the Python
API each describe what they were given as :class:`Overrides`, and :func:`resolve_sync` (or
:func:`resolve_prepare`) lays them over the settings in one place, into frozen option objects:
:class:`SourceOptions`, the pipeline's ``PrepareOptions`` and the mirror's ``SyncOptions``. A
test walks the table, so an option added to one path and forgotten in another fails it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.segment.limits import DEFAULT_MAX_GROUPS
from spotify_audience_sync.segment.pipeline import PrepareOptions

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.mirror import SyncOptions
    from spotify_audience_sync.sync.plan import PlanSync

__all__ = [
    "OPTIONS",
    "ExcludeOptions",
    "GroupOptions",
    "Option",
    "Overrides",
    "PrepareRun",
    "ServiceOptions",
    "SourceOptions",
    "SyncRun",
    "plan_overrides",
    "resolve_prepare",
    "resolve_service",
    "resolve_sync",
]


@dataclass(frozen=True)
class Option:
    """One row of the option table: where an option can come from."""

    name: str
    """The :class:`Overrides` field (and the Python API's keyword, unless ``setting`` names it)."""
    setting: str | None = None
    """The :class:`~spotify_audience_sync.settings.Settings` field it falls back to."""
    plan: str | None = None
    """The plan field (``options.x`` for a field of a sync's ``options``)."""
    flag: str | None = None
    """The `sync` command-line flag (`prepare` takes the segment's flags too)."""

    @property
    def keyword(self) -> str:
        """The Python API's keyword: the setting's name where there is one."""
        return self.setting or self.name


OPTIONS: tuple[Option, ...] = (
    # the source
    Option("format", plan="format", flag="--format"),
    Option("encoding", "encoding", "encoding", "--encoding"),
    Option("delimiter", "delimiter", "delimiter", "--delimiter"),
    Option("database_url", "database_url", flag="--database-url"),
    # columns and normalization
    Option("email_column", plan="email_column", flag="--email-column"),
    Option("phone_column", plan="phone_column", flag="--phone-column"),
    Option("device_id_column", plan="device_id_column", flag="--device-id-column"),
    Option("default_region", "default_region", "default_region", "--default-region"),
    Option("gmail_canonical", "gmail_canonical", "gmail_canonical", "--gmail-canonical"),
    Option("phone_validation", "phone_validation", "phone_validation", "--phone-validation"),
    Option("layout", "layout", "layout", "--layout"),
    Option("temp_dir", "temp_dir", flag="--temp-dir"),
    Option("max_reject_rate", "max_reject_rate", "options.max_reject_rate", "--max-reject-rate"),
    Option("rejects_path", flag="--rejects"),
    Option("country_column", "country_column", "country_column", "--country-column"),
    Option("consent_column", "consent_column", "consent_column", "--consent-column"),
    Option("exclude", plan="exclude", flag="--exclude"),
    Option("exclude_query", flag="--exclude-query"),
    # the audience and the sync
    Option("ad_account_id", "ad_account_id", "ad_account_id", "--ad-account-id"),
    Option("audience_name", plan="audience_name", flag="--audience-name"),
    Option("audience_id", plan="audience_id", flag="--audience-id"),
    Option("description", plan="description", flag="--description"),
    Option("dry_run", flag="--dry-run"),
    Option("wait", plan="options.wait", flag="--no-wait"),
    Option("wait_timeout", "wait_timeout", "options.wait_timeout", "--wait-timeout"),
    Option("allow_shrink", plan="options.allow_shrink", flag="--allow-shrink"),
    Option("force", plan="options.force", flag="--force"),
    Option("chunk_size", "upload_chunk_size", flag="--chunk-size"),
    Option("audience_column", plan="audience_column", flag="--audience-column"),
    Option(
        "audience_name_template", plan="audience_name_template", flag="--audience-name-template"
    ),
    Option("max_audiences", plan="options.max_audiences", flag="--max-audiences"),
    # what a run keeps in step, and how it reports to machines
    Option("lookalike", "lookalike", "lookalike", "--lookalike"),
    Option("prune_orphans", "prune_orphans", flag="--prune-orphans"),
    Option("notify_url", "notify_url", flag="--notify-url"),
    Option("notify_on", "notify_on", flag="--notify-on"),
    Option("metrics_file", "metrics_file", flag="--metrics-file"),
    Option("pushgateway_url", "pushgateway_url", flag="--pushgateway-url"),
)


@dataclass(frozen=True)
class Overrides:
    """What one layer (flags, a plan sync, the Python API) says; ``None`` is "not given"."""

    format: Format | None = None
    encoding: str | None = None
    delimiter: str | None = None
    database_url: str | None = field(default=None, repr=False)
    #: A column, or several (every valid value of each is an identifier).
    email_column: str | tuple[str, ...] | None = None
    phone_column: str | tuple[str, ...] | None = None
    device_id_column: str | tuple[str, ...] | None = None
    default_region: str | None = None
    gmail_canonical: bool | None = None
    phone_validation: Literal["valid", "possible"] | None = None
    layout: Literal["type-value", "wide"] | None = None
    temp_dir: str | None = None
    max_reject_rate: float | None = None
    rejects_path: str | None = None
    country_column: str | None = None
    consent_column: str | None = None
    #: Suppression lists (files); a plan's are relative to the plan's folder.
    exclude: tuple[str, ...] | None = None
    exclude_query: str | None = None
    ad_account_id: str | None = None
    audience_name: str | None = None
    audience_id: str | None = None
    description: str | None = None
    dry_run: bool | None = None
    wait: bool | None = None
    wait_timeout: float | None = None
    allow_shrink: bool | None = None
    force: bool | None = None
    chunk_size: int | None = None
    audience_column: str | None = None
    audience_name_template: str | None = None
    max_audiences: int | None = None
    lookalike: bool | None = None
    prune_orphans: bool | None = None
    notify_url: str | None = field(default=None, repr=False)
    notify_on: Literal["failure", "warning", "always"] | None = None
    metrics_file: str | None = None
    pushgateway_url: str | None = None

    def validated_by(self, settings: Settings) -> Overrides:
        """These overrides with each value backed by a setting as ``settings`` holds it (laid
        over them by :meth:`settings`): validated and normalized, as a setting is."""
        given: dict[str, Any] = {}
        for o in OPTIONS:
            if o.setting is not None and getattr(self, o.name) is not None:
                value = getattr(settings, o.setting)
                if hasattr(value, "get_secret_value"):
                    value = value.get_secret_value()
                given[o.name] = value if isinstance(value, bool | int | float) else str(value)
        return replace(self, **given)

    def settings(self) -> dict[str, Any]:
        """The values given for options backed by a setting, by the setting's name (to be
        validated as settings are: a bad flag is named by its flag)."""
        return {o.setting: getattr(self, o.name) for o in OPTIONS if o.setting is not None}


def _merged(layers: Iterable[Overrides]) -> dict[str, Any]:
    """Later layers over earlier ones, option by option."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for f in fields(layer):
            value = getattr(layer, f.name)
            if value is not None:
                merged[f.name] = value
    return merged


def plan_overrides(sync: PlanSync, folder: Path | None = None) -> Overrides:
    """What a plan sync sets, walked from :data:`OPTIONS` (its source is opened by the runner;
    its ``exclude`` files are found in ``folder``, the plan's, when given)."""
    given: dict[str, Any] = {}
    for option in OPTIONS:
        if option.plan is None:
            continue
        value: Any = sync
        for part in option.plan.split("."):
            value = getattr(value, part)
        if isinstance(value, list):  # a list of columns or files; empty: not given
            value = tuple(value) or None
        given[option.name] = value
    if (
        given.get("exclude") and folder is not None
    ):  # relative to the plan's folder, resolved by the runner
        given["exclude"] = tuple(str(p) for p in sync.exclude_paths(folder))
    return Overrides(**given)


@dataclass(frozen=True)
class SourceOptions:
    """Where the segment comes from: a file (or ``-``), or a query on a database."""

    input: str | None = None
    format: Format = "auto"
    query: str | None = None
    database_url: str | None = field(default=None, repr=False)
    encoding: str = "utf-8"
    delimiter: str | None = None


@dataclass(frozen=True)
class ExcludeOptions:
    """Suppression lists: files, and a query on the run's database."""

    paths: tuple[str, ...] = ()
    query: str | None = None

    def __bool__(self) -> bool:
        return bool(self.paths) or self.query is not None


@dataclass(frozen=True)
class GroupOptions:
    """An audience-column run: one audience per value of ``column``."""

    column: str
    template: str | None
    max_groups: int = DEFAULT_MAX_GROUPS


@dataclass(frozen=True)
class ServiceOptions:
    """What a run does for the machines that watch it, and what it keeps in step."""

    prune_orphans: bool = False
    notify_url: str | None = field(default=None, repr=False)
    notify_on: Literal["failure", "warning", "always"] = "warning"
    metrics_file: str | None = None
    pushgateway_url: str | None = None


def resolve_service(settings: Settings, *layers: Overrides) -> ServiceOptions:
    """The run's service options: the layers over ``settings``."""
    merged = _merged(layers)

    def value(name: str) -> Any:
        found = _value(merged, settings, name)
        return found.get_secret_value() if hasattr(found, "get_secret_value") else found

    metrics = value("metrics_file")
    return ServiceOptions(
        prune_orphans=bool(value("prune_orphans")),
        notify_url=value("notify_url"),
        notify_on=value("notify_on"),
        metrics_file=str(metrics) if metrics else None,
        pushgateway_url=value("pushgateway_url"),
    )


@dataclass(frozen=True)
class PrepareRun:
    """A resolved `prepare`: the source, the pipeline's options, the groups if any."""

    source: SourceOptions
    prepare: PrepareOptions
    groups: GroupOptions | None
    exclude: ExcludeOptions = field(default_factory=ExcludeOptions, kw_only=True)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The files the run reads: no output may be one of them."""
        return tuple(p for p in (self.source.input, *self.exclude.paths) if p is not None)


@dataclass(frozen=True)
class SyncRun(PrepareRun):
    """A resolved `sync`: a prepare run, the mirror's options and the service options."""

    sync: SyncOptions
    service: ServiceOptions = field(default_factory=ServiceOptions, kw_only=True)


def _value(merged: dict[str, Any], settings: Settings, name: str) -> Any:
    if name in merged:
        return merged[name]
    setting = _SETTING[name]
    return None if setting is None else getattr(settings, setting)


_SETTING = {option.name: option.setting for option in OPTIONS}


def _one_or_many(given: str | tuple[str, ...] | list[str]) -> str | list[str]:
    """A column, or several: one given as a list is that one name."""
    names = [given] if isinstance(given, str) else list(given)
    return names[0] if len(names) == 1 else names


def resolve_prepare(
    settings: Settings,
    *layers: Overrides,
    input: str | None = None,
    query: str | None = None,
) -> PrepareRun:
    """The source, pipeline and group options of a run: the layers over ``settings``."""
    merged = _merged(layers)

    def value(name: str) -> Any:
        return _value(merged, settings, name)

    columns = {
        kind: _one_or_many(merged[name])
        for kind, name in (
            (IdentifierType.EMAIL, "email_column"),
            (IdentifierType.PHONE, "phone_column"),
            (IdentifierType.DEVICE_ID, "device_id_column"),
        )
        if merged.get(name)
    }
    temp_dir = value("temp_dir")
    database_url = value("database_url")
    prepare = PrepareOptions(
        columns=columns,
        normalize=NormalizeOptions(
            gmail_canonical=bool(value("gmail_canonical")),
            default_region=value("default_region"),
            phone_validation=value("phone_validation"),
        ),
        layout=value("layout"),
        temp_dir=str(temp_dir) if temp_dir else None,
        max_reject_rate=value("max_reject_rate"),
        rejects_path=merged.get("rejects_path"),
        country_column=value("country_column"),
        consent_column=value("consent_column"),
    )
    source = SourceOptions(
        input=input,
        format=merged.get("format", "auto"),
        query=query,
        database_url=(
            database_url
            if isinstance(database_url, str | None)
            else database_url.get_secret_value()
        ),
        encoding=value("encoding"),
        delimiter=value("delimiter"),
    )
    exclude = ExcludeOptions(tuple(merged.get("exclude") or ()), merged.get("exclude_query"))
    column = merged.get("audience_column")
    groups = None
    if column is not None:
        groups = GroupOptions(
            column,
            merged.get("audience_name_template"),
            merged.get("max_audiences", DEFAULT_MAX_GROUPS),
        )
    return PrepareRun(source, prepare, groups, exclude=exclude)


def resolve_sync(
    settings: Settings,
    *layers: Overrides,
    input: str | None = None,
    query: str | None = None,
) -> SyncRun:
    """:func:`resolve_prepare` and the mirror's options; ConfigError without an ad account."""
    from spotify_audience_sync.sync.mirror import SyncOptions  # not for what only prepares

    base = resolve_prepare(settings, *layers, input=input, query=query)
    merged = _merged(layers)
    account = merged.get("ad_account_id") or settings.account_id
    wait_timeout = _value(merged, settings, "wait_timeout")
    sync = SyncOptions(
        ad_account_id=str(account),
        audience_name=merged.get("audience_name"),
        audience_id=merged.get("audience_id"),
        description=merged.get("description"),
        dry_run=bool(merged.get("dry_run")),
        wait=merged.get("wait", True),
        wait_timeout=wait_timeout,
        allow_shrink=bool(merged.get("allow_shrink")),
        max_reject_rate=base.prepare.max_reject_rate,
        force=bool(merged.get("force")),
        chunk_size=_value(merged, settings, "chunk_size"),
        lookalike=bool(_value(merged, settings, "lookalike")),
    )
    service = resolve_service(settings, *layers)
    return SyncRun(
        base.source, base.prepare, base.groups, sync, exclude=base.exclude, service=service
    )
