"""The Spotify side: Ads API client, OAuth, the resumable GCS upload, rate limits, redaction.

``client`` (audience operations, rate limiting, retries, error mapping) · ``bearer`` (the 401
refresh as an ``httpx2.Auth``) · ``auth`` and ``login`` (OAuth tokens) · ``retry`` (the one
HTTP retry policy, also used by ``upload``) · ``problem`` (Spotify's error body) · ``factory``
(the only module that reads Settings) · ``models``, ``ratelimit``, ``redact``.
"""
