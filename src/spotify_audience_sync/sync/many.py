"""Many audiences from one read: each group of an audience column is its own Mirror sync.

The groups come from :func:`~spotify_audience_sync.segment.split.prepare_split`, already read
and staged. Before the first write, the whole set is checked: every name the template makes is
one Spotify accepts, names are distinct, and no group is empty; any problem refuses the run, so
a typo in a template never half-applies. Then each group runs a :class:`.mirror.Mirror` sync in
turn, with its own guards, lock, fingerprint and state: a group that fails is recorded and the
others go on, and the caller's exit code is the worst of theirs (:func:`errors.worst_exit_code`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from spotify_audience_sync.errors import (
    EXIT_EMPTY,
    EXIT_STILL_PROCESSING,
    ConfigError,
    SafetyError,
    SyncError,
)
from spotify_audience_sync.segment.split import identifier_total
from spotify_audience_sync.sync.mirror import (
    EventSink,
    Mirror,
    SyncOptions,
    SyncReport,
    Uploader,
    validate_options,
)

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend

__all__ = [
    "AudienceOutcome",
    "audience_name",
    "audience_options",
    "check_groups",
    "mirror_groups",
    "outcome_code",
]

PLACEHOLDER = "{value}"


def audience_name(template: str, value: str) -> str:
    """The audience name for one value: ``{value}`` replaced (no other formatting applies)."""
    return template.replace(PLACEHOLDER, value.strip())


def audience_options(
    base: SyncOptions, template: str, values: list[str]
) -> dict[str | None, SyncOptions]:
    """Each value's sync options; a ConfigError listing every value whose name is refused."""
    if PLACEHOLDER not in template:
        raise ConfigError(
            f"--audience-name-template {template!r} has no {PLACEHOLDER}: every group would "
            "get the same audience"
        )
    options: dict[str | None, SyncOptions] = {}
    problems: list[str] = []
    names: dict[str, str] = {}
    for value in values:
        name = audience_name(template, value)
        option = replace(base, audience_name=name, audience_id=None)
        try:
            validate_options(option)
        except ConfigError as exc:
            problems.append(f"value {value!r} makes the name {name!r}: {exc}")
            continue
        if name in names:
            problems.append(f"values {names[name]!r} and {value!r} both make the name {name!r}")
        names[name] = value
        options[value] = option
    if problems:
        raise ConfigError("refusing to sync any audience: " + "; ".join(problems))
    return options


def check_groups(groups: Mapping[str | None, PreparedSegment]) -> None:
    """Refuse, before any write, a set of groups with one that holds no valid identifier."""
    empty = [repr(value) for value, prepared in groups.items() if identifier_total(prepared) == 0]
    if empty:
        raise SafetyError(
            f"refusing to sync any audience: no valid identifier in the group(s) {', '.join(empty)}"
        )


def outcome_code(report: SyncReport, waited: bool) -> int:
    """A finished sync's exit code: 3 EMPTY, 5 still PROCESSING, else 0."""
    if report.action in ("created", "replaced") and waited:
        if report.status == "EMPTY":
            return EXIT_EMPTY
        if report.status not in ("BOOKABLE", "LIVE"):
            return EXIT_STILL_PROCESSING
    return 0


@dataclass
class AudienceOutcome:
    """One audience's result in a run of many: what was prepared, what the sync did, the code."""

    key: str | None
    report: SyncReport
    prepared: PreparedSegment | None
    exit_code: int = 0
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.key,
            "exit_code": self.exit_code,
            "prepare": self.prepared.report.to_dict() if self.prepared is not None else None,
            "sync": self.report.to_dict(),
            **({"error": self.error} if self.error is not None else {}),
        }


def mirror_groups(
    groups: Mapping[str | None, PreparedSegment],
    options: Mapping[str | None, SyncOptions],
    client: AdsClient,
    *,
    store: StateBackend,
    uploader: Uploader | None = None,
    events: Callable[[str | None], EventSink] | None = None,
    **kwargs: Any,
) -> list[AudienceOutcome]:
    """Mirror each group to its audience, one after the other; a failure stops only its group.

    ``events(key)`` gives the event sink of one group's sync. ``kwargs`` go to :class:`Mirror`
    (``sleep``, ``clock``). The segments are closed as each sync ends.
    """
    outcomes: list[AudienceOutcome] = []
    for key, prepared in groups.items():
        option = options[key]
        run = Mirror(
            prepared,
            client,
            option,
            uploader=uploader,
            store=store,
            events=events(key) if events is not None else None,
            **kwargs,
        )
        outcome = AudienceOutcome(key, run.report, prepared)
        with prepared:
            try:
                run.run()
            except SyncError as exc:
                outcome.exit_code, outcome.error = exc.exit_code, exc.to_dict()
            else:
                outcome.exit_code = outcome_code(run.report, option.wait)
        outcomes.append(outcome)
    return outcomes
