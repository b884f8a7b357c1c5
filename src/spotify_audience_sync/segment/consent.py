"""Consent: keep only the rows whose consent column says yes.

A consent column is applied only when named (``--consent-column``): its meaning varies too much
between exports (``Email Opt Out`` says the opposite of ``Accepts Email Marketing``) to guess.
What detection does is notice a consent-like column that was not named, so the ``columns:``
line can say so.
"""

from __future__ import annotations

import polars as pl

from spotify_audience_sync.segment.columns import folded

__all__ = ["AFFIRMATIVE", "consent_like", "consented"]

AFFIRMATIVE = (
    "yes", "y", "true", "t", "1", "subscribed", "opted_in", "opt-in", "granted", "accepted",
)  # fmt: skip
"""Values that mean consent, compared after trimming and ignoring case."""

_LIKE = (
    "consent", "optin", "optedin", "optout", "acceptsemailmarketing", "acceptsmarketing",
    "acceptssmsmarketing", "marketingopt", "subscribed", "subscription", "newsletter",
    "einwilligung", "consentement", "consentimiento", "consenso", "gdpr", "dsgvo",
)  # fmt: skip


def consent_like(columns: list[str]) -> list[str]:
    """Columns whose name suggests consent or opt-out (``Accepts Email Marketing``)."""
    return [c for c in columns if any(word in folded(c) for word in _LIKE)]


def consented(values: pl.Series) -> pl.Series:
    """True where a consent value is affirmative (:data:`AFFIRMATIVE`); blank is not consent."""
    return (
        values.cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .is_in(list(AFFIRMATIVE))
        .fill_null(value=False)
    )
