"""The emulated Ads API v3 audience resources, with the contract's validation rules.

Processing is lazy: an audience whose delay has passed settles (BOOKABLE or EMPTY) the next
time anyone reads it, so no background thread is needed and tests stay deterministic.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spotify_audience_sync.sandbox.config import SandboxConfig
from spotify_audience_sync.sandbox.membership import Membership, parse_membership, size_range
from spotify_audience_sync.sandbox.problem import Problem
from spotify_audience_sync.timefmt import utc_stamp

__all__ = ["Audiences", "UploadSlot"]

TYPES = ("CUSTOM", "LOOKALIKE")
SUBTYPES = ("CUSTOMER_LIST", "WEB_EVENT", "AD_ENGAGEMENT", "LIVERAMP")
#: A lookalike reaches this many times its seed's people (the sandbox's stand-in for a model).
LOOKALIKE_FACTOR = 10
STATUSES = ("ARCHIVED", "PROCESSING", "EMPTY", "LEARNING", "BOOKABLE", "LIVE")


def _uuid(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Problem(400, f"{what} must be a UUID", code="INVALID_ARGUMENT") from None


def _stamp(seconds: float) -> str:
    return utc_stamp(seconds)


def _text(body: dict[str, Any], key: str, low: int, high: int, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise Problem(400, f"{key} is required", code="INVALID_ARGUMENT")
        return None
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise Problem(400, f"{key} must be {low}-{high} characters", code="INVALID_ARGUMENT")
    return value


@dataclass
class UploadSlot:
    """One signed upload URL: for a new audience (id = future audience id) or a replacement."""

    id: str
    account: str
    signature: str
    target: str | None
    membership: Membership | None = None


@dataclass
class _Audience:
    id: str
    account: str
    name: str
    description: str | None
    subtype: str
    created: float
    updated: float
    status: str = "PROCESSING"
    size: dict[str, int] = field(default_factory=lambda: {"min": 0, "max": 0})
    live: bool = False
    due: float | None = None
    pending: Membership | None = None
    #: LOOKALIKE audiences: the seed they were modelled on (``type`` follows from it).
    seed: _Audience | None = None
    lookalikes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "CUSTOM" if self.seed is None else "LOOKALIKE"

    def to_json(self) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "status": self.status,
            "size": dict(self.size),
            "sources": ["CUSTOMER_LIST" if self.seed is None else "AUDIENCE"],
            "created_at": _stamp(self.created),
            "updated_at": _stamp(self.updated),
        }
        if self.seed is None:
            reply["subtype"] = self.subtype
        else:
            reply["seed_audience_id"] = self.seed.id
            reply["seed_audience_name"] = self.seed.name
        if self.lookalikes:
            reply["lookalike_audience_ids"] = list(self.lookalikes)
        if self.description is not None:
            reply["description"] = self.description
        return reply


class Audiences:
    """All audiences, upload slots and last-uploaded memberships, behind one lock."""

    def __init__(
        self,
        config: SandboxConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._audiences: dict[str, _Audience] = {}
            self._slots: dict[str, UploadSlot] = {}
            self._memberships: dict[str, tuple[Membership, str, float]] = {}

    # --- accounts ----------------------------------------------------------------------------
    def check_account(self, account: str) -> str:
        account = _uuid(account, "ad_account_id")
        if account not in self._config.ad_account_ids:
            raise Problem(404, "Ad account not found", code="NOT_FOUND")
        return account

    def ad_account(self, account: str) -> dict[str, Any]:
        """``GET /ad_accounts/{id}``: the fields of AdAccountResponse a connector reads."""
        return {
            "id": account,
            "name": "Sandbox ad account",
            "status": "ACTIVE",
            "country_code": "US",
            "currency_code": "USD",
            "ad_account_role": "AD_ACCOUNT_ADMIN",
        }

    def _find(self, account: str, audience_id: str) -> _Audience:
        audience_id = _uuid(audience_id, "audience_id")
        found = self._audiences.get(audience_id)
        if found is None or found.account != account or found.status == "ARCHIVED":
            raise Problem(404, "Audience not found", code="NOT_FOUND")
        self._settle(found)
        return found

    def _settle(self, audience: _Audience) -> None:
        if audience.seed is not None:
            self._settle_lookalike(audience)
            return
        if audience.due is None or audience.due > self._monotonic() or audience.pending is None:
            return
        if not audience.pending.ready:
            return  # still counting a large file: PROCESSING a while longer, as on Spotify
        members, audience.pending, audience.due = audience.pending, None, None
        if members.bookable:
            audience.status = "LIVE" if audience.live else "BOOKABLE"
        else:
            audience.status = "EMPTY"
        audience.size = size_range(members.people) if members.bookable else size_range(0)
        audience.updated = self._clock()

    def _settle_lookalike(self, audience: _Audience) -> None:
        """A lookalike settles like its seed did, LOOKALIKE_FACTOR times as many people."""
        if audience.due is None or audience.due > self._monotonic() or audience.seed is None:
            return
        seed = audience.seed
        self._settle(seed)
        if seed.status == "PROCESSING":
            return  # modelled only once the seed is known
        audience.due = None
        people = seed.size["max"] * LOOKALIKE_FACTOR
        audience.status = "BOOKABLE" if people else "EMPTY"
        audience.size = size_range(people)
        audience.updated = self._clock()

    # --- upload slots ------------------------------------------------------------------------
    def _slot(self, account: str, target: str | None, base_url: str) -> dict[str, str]:
        slot = UploadSlot(str(uuid.uuid4()), account, secrets.token_hex(32), target)
        self._slots[slot.id] = slot
        url = (
            f"{base_url}/upload/sandbox-audiences/{slot.id}.csv"
            f"?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=3600"
            f"&X-Goog-SignedHeaders=content-type%3Bhost%3Bx-goog-resumable"
            f"&X-Goog-Signature={slot.signature}"
        )
        return {"id": slot.id, "upload_url": url}

    def new_upload(self, account: str, base_url: str) -> dict[str, str]:
        with self._lock:
            return self._slot(account, None, base_url)

    def replacement_upload(self, account: str, audience_id: str, base_url: str) -> dict[str, str]:
        with self._lock:
            audience = self._find(account, audience_id)
            return self._slot(account, audience.id, base_url)

    def slot(self, upload_id: str) -> UploadSlot | None:
        with self._lock:
            return self._slots.get(upload_id)

    def complete_upload(self, upload_id: str, data: bytes) -> None:
        """GCS finished a file: a replacement restarts processing, a new one waits for create."""
        members = parse_membership(data)
        with self._lock:
            slot = self._slots[upload_id]
            slot.membership = members
            if slot.target is None:
                return
            audience = self._audiences[slot.target]
            audience.status, audience.pending = "PROCESSING", members
            audience.due = self._monotonic() + self._config.processing_delay
            audience.updated = self._clock()
            self._memberships[audience.id] = (members, upload_id, self._clock())

    # --- audience operations -----------------------------------------------------------------
    def create(self, account: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(400, "request body must be a JSON object", code="INVALID_ARGUMENT")
        kind = body.get("audience_type")
        if kind not in TYPES:
            raise Problem(400, "audience_type must be CUSTOM or LOOKALIKE", code="INVALID_ARGUMENT")
        if "audience_category" in body:
            raise Problem(400, "audience_category is read-only", code="INVALID_ARGUMENT")
        name = _text(body, "name", 2, 80, required=True)
        description = _text(body, "description", 0, 80, required=False)
        if kind == "LOOKALIKE":
            seed_id = _uuid(body.get("seed_audience_id"), "seed_audience_id")
            return self._create_lookalike(account, seed_id, name or "", description)
        subtype = body.get("subtype", "CUSTOMER_LIST")
        if subtype not in SUBTYPES:
            raise Problem(
                400, f"subtype must be one of {', '.join(SUBTYPES)}", code="INVALID_ARGUMENT"
            )
        if subtype != "CUSTOMER_LIST":
            raise Problem(400, f"{subtype} audiences are not emulated", code="UNSUPPORTED")
        upload_id = _uuid(body.get("audience_id"), "audience_id")
        with self._lock:
            slot = self._slots.get(upload_id)
            if slot is None or slot.account != account or slot.target is not None:
                raise Problem(
                    400, "audience_id is not an upload id of this account", code="INVALID_ARGUMENT"
                )
            if upload_id in self._audiences:
                raise Problem(
                    400, "an audience already uses this audience_id", code="INVALID_ARGUMENT"
                )
            if slot.membership is None:
                raise Problem(
                    400, "the upload for audience_id is not complete", code="INVALID_ARGUMENT"
                )
            now = self._clock()
            audience = _Audience(upload_id, account, name or "", description, subtype, now, now)
            audience.pending = slot.membership
            audience.due = self._monotonic() + self._config.processing_delay
            self._audiences[upload_id] = audience
            self._memberships[upload_id] = (slot.membership, upload_id, now)
            return audience.to_json()

    def _create_lookalike(
        self, account: str, seed_id: str, name: str, description: str | None
    ) -> dict[str, Any]:
        """A LOOKALIKE audience modelled on a customer list of the same account."""
        with self._lock:
            seed = self._audiences.get(seed_id)
            if seed is None or seed.account != account or seed.status == "ARCHIVED":
                raise Problem(400, "seed_audience_id is not an audience", code="INVALID_ARGUMENT")
            if seed.seed is not None:
                raise Problem(
                    400, "a LOOKALIKE audience cannot seed another", code="INVALID_ARGUMENT"
                )
            now = self._clock()
            audience = _Audience(str(uuid.uuid4()), account, name, description, "", now, now)
            audience.seed = seed
            audience.due = self._monotonic() + self._config.processing_delay
            self._audiences[audience.id] = audience
            seed.lookalikes.append(audience.id)
            return audience.to_json()

    def get(self, account: str, audience_id: str) -> dict[str, Any]:
        with self._lock:
            return self._find(account, audience_id).to_json()

    def edit(self, account: str, audience_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("audience_type") not in TYPES:
            raise Problem(
                400, "audience_type is required (CUSTOM or LOOKALIKE)", code="INVALID_ARGUMENT"
            )
        name = _text(body, "name", 2, 80, required=False)
        description = _text(body, "description", 0, 80, required=False)
        with self._lock:
            audience = self._find(account, audience_id)
            if body["audience_type"] != audience.kind:
                raise Problem(
                    400, "audience_type does not match the audience", code="INVALID_ARGUMENT"
                )
            audience.name = name if name is not None else audience.name
            audience.description = description if "description" in body else audience.description
            audience.updated = self._clock()
            return audience.to_json()

    def delete(self, account: str, audience_id: str) -> dict[str, Any]:
        with self._lock:
            audience = self._find(account, audience_id)
            if audience.status == "LIVE":
                raise Problem(409, "A LIVE audience cannot be deleted", code="CONFLICT")
            del self._audiences[audience.id]
            if audience.seed is not None and audience.id in audience.seed.lookalikes:
                audience.seed.lookalikes.remove(audience.id)
            return {"deletion_count": 1}

    def list(self, account: str, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str, default: str) -> str:
            return query.get(name, [default])[-1]

        try:
            limit, offset = int(one("limit", "50")), int(one("offset", "0"))
        except ValueError:
            raise Problem(
                400, "limit and offset must be integers", code="INVALID_ARGUMENT"
            ) from None
        if not 1 <= limit <= 50 or offset < 0:
            raise Problem(400, "limit must be 1-50 and offset >= 0", code="INVALID_ARGUMENT")
        sort_field, direction = one("sort_field", "UPDATED_AT"), one("sort_direction", "DESC")
        if sort_field not in ("NAME", "UPDATED_AT") or direction not in ("ASC", "DESC"):
            raise Problem(400, "sort_field or sort_direction is invalid", code="INVALID_ARGUMENT")
        types = query.get("audience_types", [])
        if any(t not in TYPES for t in types):
            raise Problem(
                400, "audience_types must be CUSTOM or LOOKALIKE", code="INVALID_ARGUMENT"
            )
        ids = {_uuid(i, "audience_ids") for i in query.get("audience_ids", [])}
        needle = one("q", "").lower()
        with self._lock:
            found = []
            for audience in self._audiences.values():
                self._settle(audience)
                if audience.account != account or audience.status == "ARCHIVED":
                    continue
                if (ids and audience.id not in ids) or (types and audience.kind not in types):
                    continue
                if needle in audience.name.lower():
                    found.append(audience)
            key = (lambda a: a.name.lower()) if sort_field == "NAME" else (lambda a: a.updated)
            found.sort(key=key, reverse=direction == "DESC")
            page = [a.to_json() for a in found[offset : offset + limit]]
        paging = {
            "page_size": limit,
            "total_results": len(found),
            "offset": offset,
            "current_page": offset // limit + 1,
        }
        return {"paging": paging, "audiences": page}

    # --- admin -------------------------------------------------------------------------------
    def membership(self, audience_id: str) -> dict[str, Any]:
        with self._lock:
            entry = self._memberships.get(audience_id)
        if entry is None:
            raise Problem(404, "no upload recorded for this audience", code="NOT_FOUND")
        members, upload_id, when = entry
        return {
            "audience_id": audience_id,
            "upload_id": upload_id,
            "uploaded_at": _stamp(when),
            "layout": members.layout,
            "rows_total": len(members.rows),
            "well_formed": members.well_formed,
            "rows": [{"type": t, "value": v} for t, v in members.rows],
        }

    def force_status(self, audience_id: str, status: str) -> dict[str, Any]:
        if status not in STATUSES:
            raise Problem(
                400, f"status must be one of {', '.join(STATUSES)}", code="INVALID_ARGUMENT"
            )
        with self._lock:
            audience = self._audiences.get(audience_id)
            if audience is None:
                raise Problem(404, "Audience not found", code="NOT_FOUND")
            if audience.pending is not None:
                audience.pending.wait()  # settled first, so a later read cannot undo the override
            self._settle(audience)
            audience.status, audience.live = status, status == "LIVE"
            return audience.to_json()
