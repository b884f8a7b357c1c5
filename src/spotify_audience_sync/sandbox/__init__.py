"""The local Spotify emulator: Accounts (OAuth), Ads API v3 audiences and GCS signed uploads.

Run it as ``spotify-audience-sync sandbox`` or in-process::

    with run_sandbox(processing_delay=0.1) as sb:
        client = ...(api_base_url=sb.api_base_url, token_url=sb.token_url)
        sb.membership(audience_id)   # the rows last uploaded to that audience

Admin endpoints under ``/_sandbox/`` (faults, reset, tokens, membership) are documented in
``docs/sandbox.md``. State is in memory only. With an ``admin_key`` (the ``sandbox`` command
sets a random one when it listens beyond loopback, ``--allow-remote``) every admin route wants
it in the ``X-Sandbox-Key`` header: anyone who can reach the port could otherwise mint tokens
and read uploaded hashes.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spotify_audience_sync.sandbox.accounts import Accounts
from spotify_audience_sync.sandbox.audiences import Audiences
from spotify_audience_sync.sandbox.config import (
    SANDBOX_AD_ACCOUNT_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    FaultRule,
    Faults,
    SandboxConfig,
)
from spotify_audience_sync.sandbox.gcs import Storage
from spotify_audience_sync.sandbox.problem import Problem
from spotify_audience_sync.sandbox.server import SandboxServer, _Window

__all__ = [
    "ADMIN_KEY_HEADER",
    "SANDBOX_AD_ACCOUNT_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "FaultRule",
    "Sandbox",
    "SandboxConfig",
    "run_sandbox",
]


ADMIN_KEY_HEADER = "X-Sandbox-Key"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Sandbox:
    """One emulator instance: its state, its knobs and (once bound) its HTTP server."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SandboxConfig | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.admin_key = admin_key
        self.faults = Faults(self.config)
        self.accounts = Accounts(self.config)
        self.audiences = Audiences(self.config)
        self.storage = Storage(self.audiences, self.config)
        self.window = _Window(self)
        self.server = SandboxServer((host, port), self)
        bound_host, bound_port = self.server.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        self._thread: threading.Thread | None = None

    # --- where things are --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/ads/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/api/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def ad_account_id(self) -> str:
        return self.config.ad_account_ids[0]

    def env(self, home: Path | None = None) -> dict[str, str]:
        """``SPOTIFY_ADS_*`` variables that point the connector at this sandbox.

        With ``home`` (a private directory), the settings are complete and isolated: the token
        store and the state dir are inside it, and a refresh token set in the environment is
        blanked, so pasting them into a shell cannot mix sandbox tokens or state with a real
        login's (nor send a real refresh token to the sandbox).
        """
        env = {
            "SPOTIFY_ADS_CLIENT_ID": self.config.client_id,
            "SPOTIFY_ADS_CLIENT_SECRET": self.config.client_secret,
            "SPOTIFY_ADS_AD_ACCOUNT_ID": self.ad_account_id,
            "SPOTIFY_ADS_API_BASE_URL": self.api_base_url,
            "SPOTIFY_ADS_AUTHORIZE_URL": self.authorize_url,
            "SPOTIFY_ADS_TOKEN_URL": self.token_url,
        }
        if not _is_loopback(self.host):  # the connector sends credentials to no other host
            env["SPOTIFY_ADS_ENDPOINT_ORIGINS"] = self.base_url
        if home is not None:
            env["SPOTIFY_ADS_TOKEN_STORE"] = str(home / "tokens.json")
            env["SPOTIFY_ADS_STATE_DIR"] = str(home / "state")
            env["SPOTIFY_ADS_REFRESH_TOKEN"] = ""
        return env

    # --- test helpers (same effects as the admin endpoints) ----------------------------------
    def membership(self, audience_id: str) -> list[tuple[str, str]]:
        """The rows of the file last uploaded to ``audience_id``, exactly as sent."""
        rows = self.audiences.membership(audience_id)["rows"]
        return [(row["type"], row["value"]) for row in rows]

    def upload_stats(self, upload_id: str) -> list[dict[str, Any]]:
        """Per GCS session of ``upload_id``: bytes persisted, received and resent; its state."""
        return self.storage.stats(upload_id)

    def add_faults(self, *rules: FaultRule) -> None:
        self.faults.add(list(rules))

    def mint_tokens(self) -> dict[str, Any]:
        return self.accounts.mint()

    # --- admin endpoint ----------------------------------------------------------------------
    def admin(
        self, name: str, groups: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Serve ``/_sandbox/*``; bad input is a 400 with the reason."""
        try:
            document = json.loads(body) if body else {}
            if not isinstance(document, dict):
                raise ValueError("body must be a JSON object")
            return 200, self._admin(name, groups, document), {}
        except (ValueError, TypeError) as exc:
            raise Problem(400, str(exc), code="INVALID_ARGUMENT") from None

    def _admin(self, name: str, groups: dict[str, str], document: dict[str, Any]) -> Any:
        if name == "adminMembership":
            return self.audiences.membership(groups["audience"])
        if name == "adminStatus":
            return self.audiences.force_status(groups["audience"], str(document.get("status")))
        if name == "adminTokens":
            return self.mint_tokens()
        if name == "adminStats":
            return {"token_grants": dict(self.accounts.grants)}
        if name == "adminUpload":
            return {"upload_id": groups["upload"], "sessions": self.upload_stats(groups["upload"])}
        if name == "adminReset":
            self.audiences.reset()
            self.storage.reset()
            self.accounts.reset_counts()
            self.faults.clear()
            self.window.reset()
        elif name == "adminClearFaults":
            self.faults.clear()
        elif name == "adminFaults":
            self._apply_faults(document)
        return {"ok": True, "config": self.config.to_json()}

    def _apply_faults(self, document: dict[str, Any]) -> None:
        rules = [FaultRule(**rule) for rule in document.pop("faults", [])]
        expire = bool(document.pop("expire_access_tokens", False))
        revoke = bool(document.pop("revoke_refresh_tokens", False))
        self.config.update(document)
        self.faults.add(rules)
        if expire:
            self.accounts.expire_access_tokens()
        if revoke:
            self.accounts.revoke_refresh_tokens()

    # --- running -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Serve from a daemon thread (for tests and the ``demo`` command)."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()


@contextmanager
def run_sandbox(host: str = "127.0.0.1", port: int = 0, **config: Any) -> Iterator[Sandbox]:
    """Run a sandbox in a background thread for the ``with`` block; ``config`` sets knobs."""
    sandbox = Sandbox(host, port, SandboxConfig(**config)).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
