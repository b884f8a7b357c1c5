"""The Spotify side: Ads API client, OAuth, the resumable GCS upload, rate limits, redaction.

* ``client`` — audience operations, rate limiting, the retry loop, error mapping
* ``bearer`` — the bearer header and the one refresh after a 401, as an ``httpx2.Auth``
* ``auth``, ``login`` — OAuth tokens: the session (one refresh among many runs), the login
* ``credentials``, ``tokenfile`` — what a login is and where it is kept (the 0600 token file)
* ``retry`` — the one HTTP retry policy, shared by ``client`` and ``upload``
* ``upload``, ``window`` — the resumable GCS upload and the bounded stream it rewinds in
* ``problem`` — Spotify's error body read into a RemoteError
* ``factory`` — the only module here that reads Settings
* ``models``, ``ratelimit``, ``redact`` — response types, request limits, secret masking
"""
