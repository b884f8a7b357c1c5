"""`sync --audience-column`: one read, one Mirror sync per value of the column.

Thin: :func:`segment.split.prepare_split` reads once, :mod:`sync.many` checks the set and runs
each group; this module prints one ``audience_result`` line per audience and a final ``result``
listing them all, and returns the worst exit code (:data:`errors.EXIT_SEVERITY`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spotify_audience_sync.cli.options import prepare_options

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.many import AudienceOutcome
    from spotify_audience_sync.sync.mirror import EventSink, SyncOptions


def group_events(out: Output, key: str | None, **tags: Any) -> EventSink:
    """One group's event sink: its events carry the group's value (and the plan sync's name)."""
    labels = {**tags, **({"value": key} if key is not None else {})}

    def sink(name: str, fields: dict[str, Any]) -> None:
        out.event(name, **labels, **fields)

    return sink


def audience_line(outcome: AudienceOutcome) -> str:
    """One audience's result for a person."""
    from spotify_audience_sync.cli.sync import _summary

    prefix = f"[{outcome.key}] " if outcome.key is not None else ""
    if outcome.error is not None:
        name = outcome.report.audience_name or outcome.key
        return f"{prefix}audience {name!r}: failed (exit {outcome.exit_code}): " + str(
            outcome.error.get("message")
        )
    return prefix + _summary(outcome.report)


def report_outcomes(out: Output, outcomes: list[AudienceOutcome], **tags: Any) -> None:
    """Print each audience's result: a line for a person, an ``audience_result`` for machines."""
    prefix = f"{tags['sync_name']}: " if "sync_name" in tags else ""
    for outcome in outcomes:
        out.outcome(prefix + audience_line(outcome))
        # info, whatever the outcome: the line a person reads is the one above, and the
        # final object carries the run's exit code.
        out.event("audience_result", **tags, **outcome.to_dict())


def run_sync_many(
    settings: Settings,
    input_path: str | None,
    fmt: Format,
    flags: dict[str, Any],
    base: SyncOptions,
    *,
    report_path: str | None,
    out: Output,
) -> int:
    """Read once, sync every group of ``flags["audience_column"]``; return the worst code."""
    from spotify_audience_sync.cli.sync import _now, _record, _uploader, _write_report
    from spotify_audience_sync.errors import worst_exit_code
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.segment.split import Split, prepare_split
    from spotify_audience_sync.segment.warehouse import open_input
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.sync.backend import open_state
    from spotify_audience_sync.sync.many import audience_options, check_groups, mirror_groups
    from spotify_audience_sync.sync.mirror import validate_options
    from spotify_audience_sync.sync.tokens import token_sinks

    template: str = flags["audience_name_template"]
    validate_options(replace(base, audience_name=template))  # the description, at once
    if report_path:
        check_writable(report_path, "--report", inputs=(input_path,))
    split = Split(
        prepare_options(settings, flags),
        column=flags["audience_column"],
        max_groups=flags.get("max_audiences") or 100,
    )
    with open_state(settings.state_location) as backend:
        started, clock = _now(), time.monotonic()
        tokens = oauth_session(settings, sinks=token_sinks(backend, settings))
        try:
            with (
                open_input(
                    input_path,
                    fmt,
                    flags.get("query"),
                    settings.database_url,
                    encoding=settings.encoding,
                ) as source,
                out.phase("read") as progress,
            ):
                (groups,) = prepare_split(source, [split], on_progress=progress)
            try:
                options = audience_options(base, template, [str(k) for k in groups])
                check_groups(groups)
                out.event("groups", audiences=len(groups), values=list(options))
                with ads_client(settings, tokens) as client:
                    outcomes = mirror_groups(
                        groups,
                        options,
                        client,
                        store=backend,
                        uploader=_uploader(out),
                        events=lambda key: group_events(out, key),
                    )
            finally:
                for prepared in groups.values():
                    prepared.close()
        finally:
            tokens.close()
        seconds = time.monotonic() - clock
        for part, o in enumerate(outcomes, 1):  # a history row each, as its own run would leave
            message = str(o.error.get("message")) if o.error else None
            _record(
                backend, o.report, o.prepared, started, seconds, o.exit_code, message, out, part
            )
    report_outcomes(out, outcomes)
    code = worst_exit_code(o.exit_code for o in outcomes)
    result: dict[str, Any] = {"audiences": [o.to_dict() for o in outcomes]}
    if report_path:
        _write_report(report_path, result, out)
    out.event("result", command="sync", exit_code=code, **result)
    return code
