"""HTTP edge of the poller: one aiohttp session, per-request retries (429/Retry-After, 5xx, timeouts) and auth."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from services.poller import auth
from services.poller.handler import Fetch, PollSource, retry_delay
from services.poller.settings import PollerSettings

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class PullFailed(Exception):
    """A pull that cannot finish this run; the source is rescheduled with backoff, its windows kept."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str
    attempts: int


class PullClient:
    """Calls one provider's API for one poll source: auth headers, token refresh, retries with backoff."""

    def __init__(self, session: aiohttp.ClientSession, settings: PollerSettings, tokens: auth.TokenStore) -> None:
        self.session = session
        self.settings = settings
        self.tokens = tokens

    async def _raw(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
                   ) -> tuple[int, bytes, str, str | None]:
        timeout = aiohttp.ClientTimeout(total=self.settings.poller_http_timeout_s)
        async with self.session.request(method, url, headers=dict(headers), data=body, timeout=timeout,
                                        allow_redirects=False) as resp:
            data = await resp.read()
            return resp.status, data, resp.headers.get("Content-Type", ""), resp.headers.get("Retry-After")

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        """One request, retried on 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors."""
        s = self.settings
        for attempt in range(s.poller_max_attempts):
            retry_after: str | None = None
            try:
                status, data, ctype, retry_after = await self._raw(method, url, headers, body)
                if status not in RETRY_STATUSES:
                    return Response(status, data, ctype, attempt + 1)
                reason = f"HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status, reason = 0, f"{type(exc).__name__}: {exc}"
            if attempt + 1 == s.poller_max_attempts:
                raise PullFailed(f"{method} {_safe(url)}: {reason} after {attempt + 1} attempts",
                                 status=status or None)
            delay = retry_delay(attempt, retry_after if status == 429 or status == 503 else None,
                                datetime.now(timezone.utc), base_s=s.poller_backoff_base_s,
                                max_s=s.poller_backoff_max_s)
            log.info("retrying %s %s in %.2fs (%s)", method, _safe(url), delay, reason)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def token(self, src: PollSource, creds: Mapping[str, Any], *, force: bool = False) -> auth.Token:
        """A valid access token: the cached one unless it is about to expire (or ``force`` after a 401)."""
        now = datetime.now(timezone.utc)
        cached = await self.tokens.load(src.poll_id)
        if cached is not None and not force and cached.fresh(now, timedelta(seconds=self.settings.poller_token_margin_s)):
            return cached
        req = auth.token_request(src.auth_kind, creds, auth.token_url(src.base_url, src.options),
                                 cached.refresh_token if cached else None, src.options)
        resp = await self.send(req.method, req.url, req.headers, req.body)
        if resp.status != 200:
            raise PullFailed(f"token endpoint answered {resp.status}: {resp.body[:200]!r}", status=resp.status)
        token = auth.parse_token(resp.body, now, cached.refresh_token if cached else None)
        # saved before use: a rotated (single-use) refresh token is lost if we crash after using it unsaved
        await self.tokens.save(src.poll_id, token)
        return token

    async def fetch(self, src: PollSource, creds: Mapping[str, Any], f: Fetch) -> Response:
        """The data call with its auth; one 401 drops the token and retries once with a fresh one."""
        for refreshed in (False, True):
            token = await self.token(src, creds, force=refreshed) if src.auth_kind in auth.OAUTH_KINDS else None
            headers = {"Accept": "application/json", **f.headers, **f.secret_headers,
                       **auth.auth_headers(src.auth_kind, creds, token, src.options)}
            resp = await self.send(f.method, f.url, headers, f.body)
            if resp.status == 401 and src.auth_kind in auth.OAUTH_KINDS and not refreshed:
                log.info("401 from %s: refreshing the token", _safe(f.url))
                await self.tokens.forget(src.poll_id)
                continue
            if not 200 <= resp.status < 300:
                raise PullFailed(f"{f.method} {_safe(f.url)} answered {resp.status}: {resp.body[:200]!r}",
                                 status=resp.status)
            return resp
        raise AssertionError("unreachable")


def _safe(url: str) -> str:
    """The URL without its query: a token URL carries a password there."""
    return url.split("?", 1)[0]
