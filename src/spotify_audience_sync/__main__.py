"""``python -m spotify_audience_sync`` runs the CLI."""

from spotify_audience_sync.cli.main import run

run()
