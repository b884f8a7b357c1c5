"""The Spotify Ads API v3 audience client: one pooled ``httpx2.Client``, typed results.

It owns the audience operations, client-side rate limiting, the retry loop and the mapping of
answers to our errors. It does not own authentication: each request goes out with an
``httpx2.Auth`` from ``bearer`` (an ``OAuthSession``, a ``StaticToken`` or an adapted token
provider) that sets the bearer header and answers a 401 by refreshing once and resending, then
AuthError. Which answers are retried and how long to wait is ``retry``'s decision (shared with
the upload); mapping the verdicts to our errors lives here and nowhere else:

* 2xx → parsed model
* 408, 429 → wait (a 429's ``Retry-After``, else ``X-RateLimit-Reset``, else backoff) and
  resend, any method: the server did not act on the request
* 5xx, timeouts, dropped connections → resend GET with backoff; POST/PATCH/DELETE fail at once
  with OutcomeUnknownError (a TransientError): the write may have landed, so it is never resent
  blindly and the caller reconciles by GET
* failures to connect at all → resend any method (nothing reached Spotify)
* other 4xx → RemoteError(status, sp_trace_id, codes). 403 included: no access to the ad
  account or the API terms are not accepted — logging in again would not fix either.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from spotify_audience_sync.errors import (
    AuthError,
    ConfigError,
    OutcomeUnknownError,
    RemoteError,
    TransientError,
)
from spotify_audience_sync.spotify.answers import MAX_PAGES, check_upload_url, read_capped
from spotify_audience_sync.spotify.answers import upload_origins as allowed_origins
from spotify_audience_sync.spotify.bearer import WHAT, StaticToken, TokenProvider, bearer
from spotify_audience_sync.spotify.events import event
from spotify_audience_sync.spotify.models import AdAccount, Audience, AudiencePage, UploadUrl
from spotify_audience_sync.spotify.problem import remote_error
from spotify_audience_sync.spotify.ratelimit import RateLimiter
from spotify_audience_sync.spotify.retry import RetryPolicy, Verdict, classify

__all__ = ["AdsClient", "RetryPolicy", "StaticToken", "TokenProvider", "remote_error"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class _Throttled(httpx2.Auth):
    """Runs another auth flow, taking a rate-limit slot before every request it sends.

    So the resend after a 401 counts against the limits like any other request.
    """

    def __init__(self, inner: httpx2.Auth, limiter: RateLimiter) -> None:
        self._inner = inner
        self._limiter = limiter

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        flow = self._inner.sync_auth_flow(request)
        try:
            outgoing = next(flow)
            while True:
                self._limiter.acquire()
                response = yield outgoing
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()


class AdsClient:
    """Audience operations for one ad account. Use as a context manager to close the pool.

    ``tokens`` is an ``httpx2.Auth`` (``OAuthSession``, ``StaticToken``) or any object with
    ``access_token()`` and ``refresh(stale)``. ``upload_origins`` are origins an upload URL may
    point at besides Google Cloud Storage (SPOTIFY_ADS_UPLOAD_ORIGINS); a non-default
    ``base_url``'s own origin (the sandbox) is one of them.
    """

    def __init__(
        self,
        *,
        base_url: str,
        ad_account_id: str,
        tokens: TokenProvider | httpx2.Auth,
        http: httpx2.Client | None = None,
        transport: httpx2.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        upload_origins: Iterable[str] = (),
    ) -> None:
        self._owns_http = http is None
        self._http = http or httpx2.Client(
            transport=transport, timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0))
        )
        self._base = base_url.rstrip("/")
        self._ad_account_id = ad_account_id
        self._account = f"/ad_accounts/{ad_account_id}"
        self._prefix = f"{self._account}/audiences"
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._auth = _Throttled(bearer(tokens), limiter or RateLimiter(sleep=sleep))
        self._jitter = jitter
        self._upload_origins = allowed_origins(base_url, upload_origins)

    def close(self) -> None:
        """Close the connection pool, unless it was handed in (then its owner closes it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AdsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the ad account ----------------------------------------------------------------------
    def get_ad_account(self) -> AdAccount:
        """The ad account, or why it can't be used: unknown (ConfigError, 78) or no access
        (AuthError, 77). Read first, so a wrong id fails before any input is read."""
        try:
            return self._call(
                "GET", "", AdAccount, what=f"get ad account {self._ad_account_id}",
                prefix=self._account,
            )  # fmt: skip
        except RemoteError as exc:
            if exc.status in (400, 404):
                raise ConfigError(
                    f"ad account {self._ad_account_id} does not exist (or is not an ad account "
                    "id): check SPOTIFY_ADS_AD_ACCOUNT_ID / --ad-account-id"
                ) from exc
            if exc.status == 403:
                raise AuthError(
                    f"the logged-in Spotify user has no access to ad account "
                    f"{self._ad_account_id}: ask an admin of the account to add them"
                ) from exc
            raise

    # --- audience operations -----------------------------------------------------------------
    def new_upload_url(self) -> UploadUrl:
        """A signed URL for the file of a new audience; its ``id`` becomes the audience id."""
        what = "get an upload URL"
        return self._checked(self._call("POST", "/upload_url", UploadUrl, what=what), what)

    def replacement_upload_url(self, audience_id: str) -> UploadUrl:
        """A signed URL whose upload replaces the whole membership of ``audience_id``."""
        what = f"get a replacement upload URL for audience {audience_id}"
        return self._checked(
            self._call("POST", f"/upload_url/{audience_id}", UploadUrl, what=what), what
        )

    def _checked(self, answer: UploadUrl, what: str) -> UploadUrl:
        """The answer, once its URL is known to point at a host we may send the file to."""
        check_upload_url(answer.upload_url, self._upload_origins, what)
        return answer

    def create_audience(self, name: str, description: str | None, upload_id: str) -> Audience:
        """Create a customer-list audience from a completed upload (not retried on 5xx)."""
        body: dict[str, Any] = {
            "audience_type": "CUSTOM",
            "subtype": "CUSTOMER_LIST",
            "name": _check_name(name),
            "audience_id": upload_id,
        }
        if description is not None:
            body["description"] = _check_description(description)
        return self._call("POST", "", Audience, json=body, what="create an audience")

    def create_lookalike(
        self, name: str, seed_audience_id: str, description: str | None = None
    ) -> Audience:
        """Create a LOOKALIKE audience modelled on ``seed_audience_id`` (not retried on 5xx)."""
        body: dict[str, Any] = {
            "audience_type": "LOOKALIKE",
            "name": _check_name(name),
            "seed_audience_id": seed_audience_id,
        }
        if description is not None:
            body["description"] = _check_description(description)
        return self._call("POST", "", Audience, json=body, what="create a lookalike audience")

    def get_audience(self, audience_id: str) -> Audience:
        return self._call("GET", f"/{audience_id}", Audience, what=f"get audience {audience_id}")

    def edit_audience(
        self,
        audience_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        audience_type: str = "CUSTOM",
    ) -> Audience:
        """Change name and/or description (``audience_type`` is sent because Spotify needs it)."""
        body: dict[str, Any] = {"audience_type": audience_type}
        if name is not None:
            body["name"] = _check_name(name)
        if description is not None:
            body["description"] = _check_description(description)
        what = f"edit audience {audience_id}"
        return self._call("PATCH", f"/{audience_id}", Audience, json=body, what=what)

    def delete_audience(self, audience_id: str) -> int:
        """Delete; returns ``deletion_count``. A LIVE audience gives RemoteError status 409."""
        response = self._send("DELETE", f"/{audience_id}", what=f"delete audience {audience_id}")
        try:
            return int(response.json().get("deletion_count", 0))
        except (ValueError, AttributeError, TypeError):
            return 0

    def list_audiences(
        self,
        q: str | None = None,
        *,
        audience_ids: list[str] | None = None,
        audience_types: list[str] | None = None,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        page_size: int = 50,
    ) -> Iterator[Audience]:
        """Every audience matching the filters, fetching pages lazily until the last."""
        if not 1 <= page_size <= 50:
            raise ConfigError("page_size must be between 1 and 50")
        params: list[tuple[str, str]] = [("limit", str(page_size))]
        params += [("q", q)] if q else []
        params += [("audience_ids", i) for i in audience_ids or []]
        params += [("audience_types", t) for t in audience_types or []]
        params += [("sort_field", sort_field)] if sort_field else []
        params += [("sort_direction", sort_direction)] if sort_direction else []
        offset, pages, seen = 0, 0, set[tuple[str, ...]]()
        while True:
            page = self._call(
                "GET", "", AudiencePage, params=[*params, ("offset", str(offset))],
                what="list audiences",
            )  # fmt: skip
            _check_page(page, offset, pages, seen)
            yield from page.audiences
            offset += len(page.audiences)
            pages += 1
            total = page.paging.total_results
            if not page.audiences or (total is not None and offset >= total):
                return

    # --- transport ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, model: type[M], *, what: str, **kwargs: Any) -> M:
        response = self._send(method, path, what=what, **kwargs)
        try:
            return model.model_validate(response.json())
        except ValidationError as exc:  # named by field, never by value: it may be anything
            fields = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()[:3]
            )
            raise RemoteError(
                f"{what}: unexpected response body (HTTP {response.status_code}): {fields}",
                status=response.status_code,
            ) from None
        except ValueError as exc:
            raise RemoteError(
                f"{what}: unexpected response body (HTTP {response.status_code})",
                status=response.status_code,
            ) from exc

    def _send(
        self, method: str, path: str, *, what: str, prefix: str | None = None, **kwargs: Any
    ) -> httpx2.Response:
        """Send with retries; the auth layer below has already dealt with any 401.

        ``path`` is below the account's audiences, or below ``prefix`` when one is given."""
        idempotent = method == "GET"
        url = f"{self._base}{self._prefix if prefix is None else prefix}{path}"
        headers = {"Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                method, url, headers=headers, extensions={WHAT: what}, **kwargs
            )
            try:
                response = self._http.send(request, auth=self._auth, stream=True)
                try:
                    read_capped(response, what)  # a body that never ends stops at the cap
                finally:
                    response.close()
            except httpx2.TransportError as exc:
                retry_ok = classify(exc, resendable=idempotent) is Verdict.RETRY
                log.warning(
                    "%s: %s on attempt %d", what, type(exc).__name__, attempt,
                    extra=event("retry", what=what, error=type(exc).__name__, attempt=attempt,
                                will_retry=retry_ok and attempt < self._retry.attempts),
                )  # fmt: skip
                if retry_ok and attempt < self._retry.attempts:
                    self._sleep(self._retry.backoff(attempt, self._jitter()))
                    continue
                message = _network_message(what, exc, method, retry_ok)
                if retry_ok:
                    raise TransientError(message) from exc
                raise OutcomeUnknownError(message, method=method) from exc
            status = response.status_code
            log.debug("%s %s%s -> %d (attempt %d)", method, self._prefix, path, status, attempt)
            verdict = classify(response, resendable=idempotent)
            if verdict is Verdict.OK:
                return response
            if verdict is Verdict.RETRY:
                wait = self._retry.wait(attempt, response, self._jitter)
                why = self._retry.give_up(attempt, wait)
                if why is None:
                    log.warning(
                        "%s: HTTP %d, waiting %.1f s", what, status, wait,
                        extra=event("rate_limit_wait" if status == 429 else "retry", what=what,
                                    status=status, attempt=attempt, wait_seconds=round(wait, 3)),
                    )  # fmt: skip
                    self._sleep(wait)
                    continue
                raise TransientError(f"{remote_error(response, what)} ({why})")
            if verdict is Verdict.UNKNOWN:
                raise OutcomeUnknownError(
                    f"{remote_error(response, what)} — outcome unknown, not retried: "
                    "check the audience state before trying again",
                    status=status,
                    method=method,
                )
            raise remote_error(response, what)


def _check_page(page: AudiencePage, offset: int, pages: int, seen: set[tuple[str, ...]]) -> None:
    """Stop a list that would never end: a page seen before, more than the total, or too many."""
    ids = tuple(audience.id for audience in page.audiences)
    total = page.paging.total_results
    if ids and ids in seen:
        raise RemoteError(f"list audiences: the page at offset {offset} repeats an earlier page")
    if ids and total is not None and offset >= total:
        raise RemoteError(
            f"list audiences: a page at offset {offset}, past the {total} audiences announced"
        )
    if pages >= MAX_PAGES:
        raise RemoteError(f"list audiences: still paging after {MAX_PAGES} pages; stopped")
    seen.add(ids)


def _network_message(what: str, exc: Exception, method: str, retried: bool) -> str:
    if retried:
        return f"{what}: network failure ({type(exc).__name__}) outlived the retries"
    return (
        f"{what}: network failure ({type(exc).__name__}) during {method}; the outcome is "
        "unknown and it was not retried: check the audience state before trying again"
    )


def _check_name(name: str) -> str:
    if not 2 <= len(name) <= 80:
        raise ConfigError("audience name must be 2-80 characters")
    return name


def _check_description(description: str) -> str:
    if len(description) > 80:
        raise ConfigError("audience description must be at most 80 characters")
    return description
