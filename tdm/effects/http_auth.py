"""Authentication of REST calls: basic, bearer and API-key headers, OAuth2 client credentials.

Secrets are revealed here only to build the headers of one call (:class:`~tdm.effects.http._Call`).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping

from tdm.core.rest import ApiKey, Basic, Bearer, OAuth2ClientCredentials, redact_url
from tdm.effects.http import _Call, _key, _Request, log
from tdm.effects.http_errors import _excerpt
from tdm.effects.secrets import Secret
from tdm.errors import EffectError

__all__ = ["prepare_auth"]


def prepare_auth(call: _Call) -> None:
    """Resolve auth secrets once per call (the values live only in this object)."""
    auth = call.effect.auth
    if auth is None:
        return
    name = call.secret_of(auth)
    section = call.section(name)
    if isinstance(auth, Basic):
        user = _key(section, auth.username_key, name).reveal()
        password = _key(section, auth.password_key, name).reveal()
        call.auth_headers["Authorization"] = _basic_header(user, password).reveal()
    elif isinstance(auth, Bearer):
        token = _key(section, auth.token_key, name).reveal()
        call.auth_headers["Authorization"] = f"Bearer {token}"
    elif isinstance(auth, ApiKey):
        value = auth.prefix + _key(section, auth.key, name).reveal()
        if auth.header:
            call.auth_headers[auth.header] = value
        else:
            assert auth.query is not None
            call.auth_params[auth.query] = value
    elif isinstance(auth, OAuth2ClientCredentials):
        call.oauth = _OAuth2(auth, section, call)
    else:
        raise EffectError(f"unsupported auth {type(auth).__name__}", node=call.node)


class _OAuth2:
    """A client-credentials token shared by all workers; fetched once, refreshed on expiry/401."""

    def __init__(self, auth: OAuth2ClientCredentials, section: Mapping[str, Secret], call: _Call):
        self.auth = auth
        self.client_id = _key(section, auth.client_id_key, call.secret_of(auth))
        self.client_secret = _key(section, auth.client_secret_key, call.secret_of(auth))
        self.call = call
        self.token: Secret | None = None
        self.expires_at = 0.0
        self.lock: asyncio.Lock | None = None
        self.fetched = 0

    async def get(self) -> Secret:
        if self.token is not None and time.monotonic() < self.expires_at:
            return self.token
        return await self.refresh(stale=self.token)

    async def refresh(self, stale: Secret | None) -> Secret:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            fresh = self.token is not None and self.token != stale
            if fresh and time.monotonic() < self.expires_at:
                return self.token  # type: ignore[return-value]  # another worker refreshed it
            data = {"grant_type": "client_credentials"}
            if self.auth.scope:
                data["scope"] = self.auth.scope
            if self.auth.audience:
                data["audience"] = self.auth.audience
            headers = {"Accept": "application/json"}
            if self.auth.send_as == "basic":
                headers["Authorization"] = _basic_header(
                    self.client_id.reveal(), self.client_secret.reveal()
                ).reveal()
            else:
                data["client_id"] = self.client_id.reveal()
                data["client_secret"] = self.client_secret.reveal()
            url = self.auth.token_url
            shown = redact_url(url)
            response = await self.call.send(
                _Request("POST", url, {}, headers), form=data, with_auth=False
            )
            if response.status_code >= 400:
                raise EffectError(
                    f"OAuth2 token request to {shown} answered {response.status_code} "
                    f"{response.reason_phrase}{_excerpt(response)}; check the "
                    f"{self.auth.client_id_key!r}/{self.auth.client_secret_key!r} keys of secret "
                    f"{self.call.secret_of(self.auth)!r} and the token URL",
                    node=self.call.node,
                    uri=shown,
                )
            try:
                payload = response.json()
                token = payload["access_token"]
            except (ValueError, KeyError, TypeError):
                raise EffectError(
                    f"OAuth2 token response from {shown} has no access_token field",
                    node=self.call.node,
                    uri=shown,
                ) from None
            expires_in = payload.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
            if isinstance(expires_in, str) and not expires_in.replace(".", "", 1).isdigit():
                lifetime = 3600.0
            # Refresh a little early, so a token never expires on its way to the server.
            self.expires_at = time.monotonic() + lifetime - min(30.0, lifetime * 0.1)
            self.token = Secret(str(token))
            self.fetched += 1
            log.debug("%s: fetched an OAuth2 token from %s", self.call.node, shown)
            return self.token


def _basic_header(username: str, password: str) -> Secret:
    token = Secret(base64.b64encode(f"{username}:{password}".encode()).decode("ascii"))
    # Both are remembered for scrubbing: a server may echo the credentials without "Basic ".
    return Secret("Basic " + token.reveal())
