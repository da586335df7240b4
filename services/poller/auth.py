"""Pull-API auth: pure request/response helpers per auth kind, and the encrypted token cache in PostgreSQL."""
from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import asyncpg

from ingest.crypto import SecretBox
from ingest.errors import UnparseablePayload

AuthKind = Literal["oauth2_client_credentials", "oauth2_refresh", "oauth2_password", "api_authentication",
                   "bearer", "api_key", "vinculum", "none"]
#: the credential fields each kind needs (`pos-ingest poll add --credentials '{...}'`)
REQUIRED: dict[str, tuple[str, ...]] = {
    "oauth2_client_credentials": ("client_id", "client_secret"),
    "oauth2_refresh": ("client_id", "client_secret", "refresh_token"),
    "oauth2_password": ("username", "password"),
    "api_authentication": ("api_key", "api_secret"),
    "bearer": ("token",),
    "api_key": ("token",),
    "vinculum": ("api_owner", "api_key"),
    "none": (),
}
OAUTH_KINDS = frozenset({"oauth2_client_credentials", "oauth2_refresh", "oauth2_password"})


class CredentialError(ValueError):
    """Credentials that do not fit their auth kind (refused by ``poll add``)."""


def check_credentials(kind: str, creds: Mapping[str, Any]) -> None:
    if kind not in REQUIRED:
        raise CredentialError(f"unknown auth kind {kind!r}; one of: {', '.join(REQUIRED)}")
    missing = [f for f in REQUIRED[kind] if not creds.get(f)]
    if missing:
        raise CredentialError(f"{kind} needs {', '.join(missing)}")


@dataclass(frozen=True)
class Token:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None

    def fresh(self, now: datetime, margin: timedelta) -> bool:
        """Usable for the next request: refreshed *before* expiry, never after a 401 only."""
        return self.expires_at is None or self.expires_at - margin > now


@dataclass(frozen=True)
class TokenRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def token_url(base_url: str, options: Mapping[str, Any]) -> str:
    return str(options.get("token_url") or f"{base_url.rstrip('/')}/oauth/token")


def token_request(kind: str, creds: Mapping[str, Any], url: str, refresh_token: str | None,
                  options: Mapping[str, Any]) -> TokenRequest:
    """The token call for ``kind``: client credentials; refresh (authorization-code grant, the refresh token
    in hand); or the Unicommerce password grant (a GET with query parameters, as Uniware documents it)."""
    if kind == "oauth2_password":
        query = {"grant_type": "password", "client_id": creds.get("client_id") or "my-trusted-client",
                 "username": creds["username"], "password": creds["password"]}
        return TokenRequest("GET", f"{url}?{urlencode(query)}", {"Accept": "application/json"}, None)
    form: dict[str, str] = {}
    if kind == "oauth2_client_credentials":
        form["grant_type"] = "client_credentials"
        if options.get("scope"):
            form["scope"] = str(options["scope"])
    elif kind == "oauth2_refresh":
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token or str(creds["refresh_token"])}
    else:
        raise CredentialError(f"{kind} has no token endpoint")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if options.get("client_auth", "basic") == "body":
        form.update(client_id=str(creds["client_id"]), client_secret=str(creds["client_secret"]))
    else:  # RFC 6749 §2.3.1: HTTP Basic with the client id and secret
        pair = f"{creds['client_id']}:{creds['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return TokenRequest("POST", url, headers, urlencode(form).encode())


def parse_token(body: bytes, now: datetime, previous_refresh: str | None) -> Token:
    """``{access_token, refresh_token?, expires_in?}``; a server that rotates refresh tokens (Lightspeed's are
    single-use) returns a new one, which must replace the old one before anything else happens."""
    try:
        data = json.loads(body)
        access = str(data["access_token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UnparseablePayload(f"token response without access_token: {body[:200]!r}",
                                 reason_code="token_response") from exc
    expires_in = data.get("expires_in")
    expires_at = now + timedelta(seconds=int(expires_in)) if expires_in not in (None, "") else None
    return Token(access, data.get("refresh_token") or previous_refresh, expires_at)


def auth_headers(kind: str, creds: Mapping[str, Any], token: Token | None,
                 options: Mapping[str, Any]) -> dict[str, str]:
    """Headers proving who we are on a data call (Vinculum's v1–v3 form carries them in the body instead)."""
    if kind in OAUTH_KINDS:
        assert token is not None
        return {"Authorization": f"Bearer {token.access_token}"}
    if kind == "api_authentication":  # Revel: key and secret joined by a colon
        return {"API-AUTHENTICATION": f"{creds['api_key']}:{creds['api_secret']}"}
    if kind == "bearer":
        return {"Authorization": f"Bearer {creds['token']}"}
    if kind == "api_key":  # Atlas Admin API: X-Api-Key
        return {str(options.get("api_key_header") or "X-Api-Key"): str(creds["token"])}
    return {}


class TokenStore:
    """``poll_tokens``: access and refresh tokens sealed with ``SECRETS_KEY``, one row per poll source."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self.pool = pool
        self.box = box

    async def load(self, poll_id: int) -> Token | None:
        row = await self.pool.fetchrow("SELECT * FROM poll_tokens WHERE poll_id = $1", poll_id)
        if row is None:
            return None
        refresh = self.box.open(row["refresh_token_enc"]) if row["refresh_token_enc"] else None
        return Token(self.box.open(row["access_token_enc"]), refresh, row["expires_at"])

    async def save(self, poll_id: int, token: Token) -> None:
        await self.pool.execute(
            "INSERT INTO poll_tokens (poll_id, access_token_enc, refresh_token_enc, expires_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (poll_id) DO UPDATE SET access_token_enc = EXCLUDED.access_token_enc, "
            "refresh_token_enc = EXCLUDED.refresh_token_enc, expires_at = EXCLUDED.expires_at, updated_at = now()",
            poll_id, self.box.seal(token.access_token),
            self.box.seal(token.refresh_token) if token.refresh_token else None, token.expires_at)

    async def forget(self, poll_id: int) -> None:
        """After a 401: the access token is dead, but a rotated refresh token must survive."""
        await self.pool.execute("UPDATE poll_tokens SET expires_at = '-infinity' WHERE poll_id = $1", poll_id)
