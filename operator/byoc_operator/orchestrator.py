"""HTTP calls to orchestrators (BYOC capability registration, Live Runner discovery and static upserts). Thin I/O;
decisions live in `registration.py` and `static_runners.py`, and what each registration mode does in `modes/`.

The orchestrator secret goes only into the Authorization header (raw, no "Bearer", as go-livepeer's
byoc/job_orchestrator.go checks it) and the worker token only into the registration body; neither ever into an
error message.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import aiohttp
import yarl
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Secret

from byoc_operator import api, metrics, registration
from byoc_operator.registration import sanitise
from byoc_operator.replies import read_bounded

TIMEOUT_SECONDS = 10.0
TIMEOUT = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS, connect=5)
STATIC_HEALTH_CHECK_SECONDS = 3.0
# Replies are read this far at most: an orchestrator's JSON answer (a /discovery list, upserted runners) ...
REPLY_LIMIT = 1 << 20
# ... and an error reply's excerpt, of which a sanitised start goes into status and Events.
ERROR_BODY_LIMIT = 4096
ERROR_EXCERPT_CHARS = 200


class RegistrationError(Exception):
    """A failed call, with a message already safe to show."""


def endpoint(base: str, *segments: str) -> yarl.URL:
    """The URL of one call: path segments joined to the orchestrator's base URL (never concatenated, so nothing in
    the base can turn them into a query or fragment). A base that is not a plain http(s) URL is refused here too:
    fleet Secrets' URLs never passed the API server's check."""
    try:
        api.checked_url(base)
    except ValueError:
        raise RegistrationError(f"URL refused: {api.URL_MESSAGE}") from None
    return yarl.URL(base).joinpath(*segments)


def ssl_context(ca_pem: str | None, insecure: bool) -> ssl.SSLContext | bool:
    """One orchestrator's TLS settings, for its calls only."""
    if insecure:
        return False
    if ca_pem:
        return ssl.create_default_context(cadata=ca_pem)
    return True


def upsert_timeout(entries: int) -> aiohttp.ClientTimeout:
    """go-livepeer health-checks every entry of an upsert one after another, 3 s each at most, before it answers
    (``ai/runner/live_runner.go`` ``RegisterStaticRunners``): the reply may take that long."""
    return aiohttp.ClientTimeout(total=TIMEOUT_SECONDS + STATIC_HEALTH_CHECK_SECONDS * entries, connect=5)


async def refusal(resp: aiohttp.ClientResponse, *hide: str) -> RegistrationError:
    """The error for a reply that is not a 200: status code, and a short sanitised excerpt of the body (never a
    redirect's target, which is not followed)."""
    if 300 <= resp.status < 400:
        return RegistrationError(f"HTTP {resp.status}: the orchestrator redirected; redirects are not followed")
    body, _ = await read_bounded(resp, ERROR_BODY_LIMIT)
    excerpt = sanitise(body.decode(errors="replace"), *hide)[:ERROR_EXCERPT_CHARS]
    return RegistrationError(f"HTTP {resp.status}: {excerpt}" if excerpt else f"HTTP {resp.status}")


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: yarl.URL,
    secret: str | None,
    tls: ssl.SSLContext | bool,
    limit: aiohttp.ClientTimeout = TIMEOUT,
    reply: bool = False,
    **body: Any,
) -> bytes:
    """One request, never following a redirect; `secret` (if any) as raw Authorization. On 200 the reply's body
    when `reply` (bounded), else nothing is read. Errors never carry the secret or the worker token (a JSON
    body's `token`)."""
    call = url.name
    hide = (secret or "", str((body.get("json") or {}).get("token") or ""))
    headers = {"Authorization": secret} if secret is not None else {}
    try:
        async with session.request(
            method, url, headers=headers, ssl=tls, timeout=limit, allow_redirects=False, **body
        ) as resp:
            metrics.REGISTRATION_CALLS.labels(call, str(resp.status)).inc()
            if resp.status != 200:
                raise await refusal(resp, *hide)
            if not reply:
                return b""
            data, more = await read_bounded(resp, REPLY_LIMIT)
            if more:
                raise RegistrationError(f"/{call} answered more than {REPLY_LIMIT} bytes")
            return data
    except RegistrationError:
        raise
    except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
        metrics.REGISTRATION_CALLS.labels(call, type(exc).__name__).inc()
        raise RegistrationError(sanitise(f"{type(exc).__name__}: {exc}", *hide)) from None


async def register(
    session: aiohttp.ClientSession, base_url: str, secret: str, payload: dict[str, Any], tls: ssl.SSLContext | bool
) -> None:
    await _call(session, "POST", endpoint(base_url, "capability", "register"), secret, tls, json=payload)


async def upsert_runners(
    session: aiohttp.ClientSession, cli_url: str, document: dict[str, Any], tls: ssl.SSLContext | bool
) -> list[dict[str, Any]]:
    """POST {cli}/registerLiveRunners (no auth, as upstream's CLI port); the registrations it answers with."""
    timeout = upsert_timeout(len(document.get("runners") or []))
    url = endpoint(cli_url, "registerLiveRunners")
    data = await _call(session, "POST", url, None, tls, timeout, reply=True, json=document)
    try:
        runners = json.loads(data).get("runners")
    except (ValueError, AttributeError):
        raise RegistrationError("/registerLiveRunners answered no JSON object") from None
    return [r for r in runners or [] if isinstance(r, dict)]


async def unregister(
    session: aiohttp.ClientSession, base_url: str, secret: str, name: str, tls: ssl.SSLContext | bool
) -> None:
    await _call(session, "POST", endpoint(base_url, "capability", "unregister"), secret, tls, data=name.encode())


async def discovery(session: aiohttp.ClientSession, base_url: str, tls: ssl.SSLContext | bool) -> Any:
    """An orchestrator's public GET /discovery answer."""
    data = await _call(session, "GET", endpoint(base_url, "discovery"), None, tls, reply=True)
    try:
        return json.loads(data)
    except ValueError:
        raise RegistrationError("/discovery answered no JSON") from None


class OrchestratorAccess:
    """What every registration mode needs to reach orchestrators: one HTTP session, and their secrets and CA
    bundles, read from the API server when a call needs them and kept nowhere else."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    def http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar: a cookie one orchestrator sets must never travel with another worker's calls.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def discovery(self, namespace: str, target: registration.Target) -> Any:
        """An orchestrator's public GET /discovery answer."""
        return await discovery(self.http(), target.url, await self.tls(namespace, target))

    async def tls(self, namespace: str, target: registration.Target) -> ssl.SSLContext | bool:
        return ssl_context(await self._ca(namespace, target), target.insecure)

    async def _ca(self, namespace: str, target: registration.Target) -> str | None:
        if target.ca_secret_name and target.ca_secret_key:
            where = target.secret_namespace or namespace
            return await self.secret_value(where, target.ca_secret_name, target.ca_secret_key)
        return None

    async def credentials(self, namespace: str, target: registration.Target) -> tuple[str, ssl.SSLContext | bool]:
        if target.secret_name is None:
            raise RegistrationError("no secretRef: the orchestrator secret is needed to register")
        # The API server's rule for specs; fleet Secrets (and objects stored before the rule) never passed it.
        if not api.secret_may_travel(target.url, target.allow_plaintext):
            raise RegistrationError(
                "secret not sent: the url is not https:// and the orchestrator secret would travel in plaintext "
                "(allow it with tls.allowPlaintext: true, or key allowPlaintext: 'true' in a fleet Secret)"
            )
        # A BYOCOrchestrator's secret is read from the operator's namespace, and only ever sent to its own URL.
        secret = await self.secret_value(target.secret_namespace or namespace, target.secret_name, target.secret_key)
        return secret, await self.tls(namespace, target)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        # One message whatever went wrong (no Secret, no such key, no access): it must not tell a tenant which
        # Secrets or keys exist.
        unreadable = RegistrationError(f"cannot read key '{key}' of Secret {name}")
        try:
            obj = await self.client.get(Secret, name, namespace=namespace)
        except ApiError:
            raise unreadable from None
        data = obj.data or {}
        if key not in data:
            raise unreadable
        return base64.b64decode(data[key]).decode().strip()
