"""The connector manifest: what a CDP or scheduler needs to know to run this connector.

Built from the code, never written by hand: the version from ``__version__``, the settings
schema from :class:`~spotify_audience_sync.settings.Settings`, the identifier types from
:class:`~spotify_audience_sync.identifiers.normalize.IdentifierType`, the commands from the click
group (passed in) and the exit codes from :data:`~spotify_audience_sync.errors.EXIT_TABLE`.
``spotify-audience-sync spec`` prints it as JSON; ``connector.yaml`` at the repository root holds
the same document as YAML (``scripts/write_connector_yaml.py`` writes it) and a test keeps the
two equal, so neither can drift from the code.
"""

from __future__ import annotations

from typing import Any

import click

from spotify_audience_sync import __version__

__all__ = [
    "IMAGE",
    "REQUIRED_SETTINGS",
    "build_manifest",
    "command_list",
    "exit_code_list",
    "settings_schema",
]

NAME = "spotify-audience-sync"
DESCRIPTION = (
    "Keep a Spotify Ads Manager customer-list audience equal to a segment of your data "
    "(Mirror sync): normalize, hash and deduplicate identifiers, upload them, and replace the "
    "audience's whole membership."
)
IMAGE = f"{NAME}:{__version__}"
"""Not published to a registry: ``docker build -t IMAGE .``, then push it to your own."""

REQUIRED_SETTINGS = ("client_id", "client_secret", "ad_account_id")
"""What ``check`` and ``sync`` cannot run without (``prepare`` needs none of them)."""

SYNC_MODES = ("mirror",)


def settings_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Settings`: env var per property, secrets ``writeOnly``."""
    from pydantic import SecretStr

    from spotify_audience_sync.settings import ENV_PREFIX, Settings, env_name

    schema = Settings.model_json_schema()  # descriptions: the attribute docstrings
    for name, prop in schema["properties"].items():
        if "description" in prop:
            prop["description"] = " ".join(prop["description"].split())
        prop["x-env-var"] = env_name(name)
        annotation = Settings.model_fields[name].annotation
        if annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ()):
            prop["writeOnly"] = True
            prop["format"] = "password"
    schema["description"] = (
        f"Settings come from {ENV_PREFIX}* environment variables (or a .env file in the working "
        "directory). 'required' lists what check and sync need; prepare needs none of them. "
        f"Headless runs also need {env_name('refresh_token')} or a token store holding a login."
    )
    schema["required"] = list(REQUIRED_SETTINGS)
    return schema


def command_list(group: click.Group, ctx: click.Context | None = None) -> list[dict[str, str]]:
    """Every command and subcommand with its one-line help, sorted by name."""
    ctx = ctx or click.Context(group, info_name=NAME)
    found: list[dict[str, str]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        found.append({"name": name, "help": command.get_short_help_str(limit=300)})
        if isinstance(command, click.Group):
            for sub in command_list(command, ctx):
                found.append({"name": f"{name} {sub['name']}", "help": sub["help"]})
    return found


def exit_code_list() -> list[dict[str, Any]]:
    """Every exit code with its meaning and whether running again later may help."""
    from spotify_audience_sync import errors

    return [
        {"code": row.code, "meaning": row.meaning, "retryable": row.retryable}
        for row in sorted(errors.EXIT_TABLE, key=lambda row: row.code)
    ]


def build_manifest(commands: list[dict[str, str]]) -> dict[str, Any]:
    """The whole manifest as plain JSON-ready data (what `spec` prints).

    ``commands`` is :func:`command_list` of the CLI's root group, passed in by the caller: the
    manifest is data about the CLI, so it does not import the CLI.
    """
    from spotify_audience_sync.identifiers.normalize import IdentifierType
    from spotify_audience_sync.sync.plan import plan_schema

    return {
        "name": NAME,
        "version": __version__,
        "description": DESCRIPTION,
        "image": IMAGE,
        "image_note": (
            "not published to a registry: build it from the repository with "
            f"`docker build -t {IMAGE} .` and push it to your own"
        ),
        "entrypoint": [NAME],
        "sync_modes": list(SYNC_MODES),
        "identifier_types": [{"type": t.value, "key": t.key} for t in IdentifierType],
        "settings": settings_schema(),
        "plan": plan_schema(),
        "commands": commands,
        "exit_codes": exit_code_list(),
    }
