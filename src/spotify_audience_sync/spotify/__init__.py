"""The Spotify side: Ads API client, OAuth, the resumable GCS upload, rate limits, redaction."""
