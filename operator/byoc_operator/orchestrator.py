"""HTTP calls to orchestrators (BYOC capability registration, Live Runner discovery and static upserts). Thin I/O;
decisions live in `registration.py` and `static_runners.py`.

The orchestrator secret goes only into the Authorization header (raw, no "Bearer", as go-livepeer's
byoc/job_orchestrator.go checks it) and the worker token only into the registration body; neither ever into an
error message.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Secret

from byoc_operator import api, metrics, registration, static_runners
from byoc_operator.index import Key
from byoc_operator.registration import sanitise
from byoc_operator.render.worker import Worker
from byoc_operator.replies import read_bounded

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
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
    return aiohttp.ClientTimeout(total=TIMEOUT.total + STATIC_HEALTH_CHECK_SECONDS * entries, connect=5)


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


class Fleet:
    """Keeps each worker's registration with its orchestrators true: register, refresh, unregister.

    Secrets are read from the API server when a call needs them and kept nowhere else.
    """

    def __init__(
        self,
        client: AsyncClient,
        post_event: Callable[[dict[str, Any], str, str, str], None],
        token_propagation_seconds: float = registration.TOKEN_PROPAGATION_SECONDS,
    ) -> None:
        self.client = client
        self._token_delay = token_propagation_seconds
        self._post_event = post_event
        self._session: aiohttp.ClientSession | None = None
        self._memory: dict[tuple[Key, str], registration.Memory] = {}
        self._known: dict[tuple[Key, str], registration.Target] = {}
        self._upserted: dict[tuple[Key, str], static_runners.Upserted] = {}
        self._tokens: dict[Key, registration.SentToken] = {}  # in memory only, like every secret here

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    def forget(self, key: Key) -> None:
        self._tokens.pop(key, None)
        for mem_key in [k for k in [*self._memory, *self._upserted] if k[0] == key]:
            self._memory.pop(mem_key, None)
            self._known.pop(mem_key, None)
            self._upserted.pop(mem_key, None)

    async def sync(
        self,
        key: Key,
        worker: Worker,
        targets: list[registration.Target],
        capacity: int,
        url: str,
        previous: list[dict[str, Any]],
        ref: dict[str, Any],
        now: str,
        deleting: bool = False,
        active: int = 0,
        held: dict[str, Key] | None = None,
    ) -> list[dict[str, Any]]:
        """Make every orchestrator's view match: registered with `capacity` free slots (0 included: a
        capability stays registered while streams may run on it, or their params and stop calls would go
        nowhere), or, `deleting` or gone from the spec, unregistered. `active` is the streams running when
        `capacity` was measured: when it changes the orchestrator's count has drifted (slots.py), so that too
        registers again. Orchestrators in `held` (URL -> worker, `claims.py`) hold this capability for another
        worker: no call at all goes there, neither register nor unregister. Returns the per-orchestrator status
        entries (deleting: those whose unregister failed)."""
        payload = registration.capability_payload(worker, capacity, url)
        digest = registration.payload_digest({**payload, "active": active})
        refresh = float(worker.spec.registration.refresh_seconds)
        token_ref = worker.spec.registration.token_secret_ref
        old = {e["url"]: e for e in previous}
        entries = []
        wanted = {t.url for t in targets}
        gone = [self._known.get((key, url)) for url in old if url not in wanted]
        for target in [*targets, *(t for t in gone if t)]:
            holder = (held or {}).get(target.url)
            if holder is not None:
                # Whatever this worker did there before, the registration is the holder's now.
                self._memory.pop((key, target.url), None)
                self._known.pop((key, target.url), None)
                if not deleting:
                    entries.append({"url": target.url, "registered": False, "capacity": 0, "heldBy": "/".join(holder)})
                continue
            keep = target.url in wanted and not deleting
            self._known[(key, target.url)] = target
            entry = await self._sync_one(
                key, target, payload, digest, keep, refresh, old.get(target.url), ref, now, token_ref
            )
            if keep or entry.get("lastError"):
                # A failed unregister stays in the status, so it is retried (and, deleting, holds the finalizer).
                entries.append(entry)
        if deleting or not targets:
            self.forget(key)
        return entries

    async def _sync_one(
        self,
        key: Key,
        target: registration.Target,
        payload: dict[str, Any],
        digest: str,
        want: bool,
        refresh: float,
        old: dict[str, Any] | None,
        ref: dict[str, Any],
        now: str,
        token_ref: api.SecretKeyRef | None = None,
    ) -> dict[str, Any]:
        # The operator's memory of its own calls is the truth here, not the status it read back (which may lag
        # a write it just made); the status only seeds `since` after an operator restart.
        mem_key = (key, target.url)
        memory = self._memory.get(mem_key)
        action = registration.plan(want, digest, memory, time.monotonic(), refresh)
        if action == "keep" and memory is not None:
            return memory.entry(target.url)
        was_registered = bool(memory and memory.digest is not None)
        try:
            secret, tls = await self._credentials(key[0], target)
            if action == "register":
                sent = await self._with_token(key, key[0], payload, token_ref)
                await register(self._http(), target.url, secret, sent, tls)
                since = (
                    (memory.since if was_registered and memory else None)
                    or ((old or {}).get("since") if (old or {}).get("registered") else None)
                    or now
                )
                self._memory[mem_key] = registration.Memory(digest, time.monotonic(), payload["capacity"], since)
                if not was_registered or (memory and memory.error):
                    self._post_event(
                        ref, "Normal", "Registered", f"registered with {target.url}, capacity {payload['capacity']}"
                    )
            else:
                await unregister(self._http(), target.url, secret, payload["name"], tls)
                self._memory[mem_key] = registration.Memory(None, time.monotonic())
                if was_registered:
                    self._post_event(ref, "Normal", "Unregistered", f"unregistered from {target.url}")
        except RegistrationError as exc:
            if not memory or memory.error != str(exc):
                self._post_event(ref, "Warning", "RegistrationFailed", f"{target.url}: {exc}")
            base = memory or registration.Memory(None, time.monotonic())
            self._memory[mem_key] = registration.Memory(
                base.digest, time.monotonic(), base.capacity, base.since, str(exc)
            )
        return self._memory[mem_key].entry(target.url)

    async def _with_token(
        self, key: Key, namespace: str, payload: dict[str, Any], token_ref: api.SecretKeyRef | None
    ) -> dict[str, Any]:
        """The payload with the worker's token, read from its Secret for the call; a rotated one is registered
        once it had time to reach the pods (`registration.next_token`). The digest that decides when to call is
        taken without it."""
        if token_ref is None:
            return payload
        read = await self._secret_value(namespace, token_ref.name, token_ref.key)
        state = registration.next_token(self._tokens.get(key), read, time.monotonic(), self._token_delay)
        self._tokens[key] = state
        return {**payload, "token": state.value}

    async def observe_runners(
        self, key: Key, targets: list[registration.Target], pods: list[str], previous: list[dict[str, Any]], now: str
    ) -> list[dict[str, Any]]:
        """Live Runner (dynamic): pods register themselves; read each orchestrator's public /discovery to
        report how many of this worker's pods it routes to (dynamic runner routes are the runner ids, which
        the registrar sets to the pod names)."""
        old = {e["url"]: e for e in previous}
        entries = []
        for target in targets:
            entry = dict(old.get(target.url) or {"url": target.url, "registered": False, "capacity": 0})
            try:
                listed = await self._discovery(key[0], target)
            except RegistrationError as exc:
                entry["lastError"] = str(exc)
            else:
                ours = registration.our_runners(listed, pods)
                was = bool(entry.get("registered"))
                entry.update(registered=bool(ours), capacity=sum(r.get("capacity", 0) for r in ours), runners=len(ours))
                entry.pop("lastError", None)
                if entry["registered"] and not was:
                    entry["since"] = now
                elif not entry["registered"]:
                    entry.pop("since", None)
            entries.append(entry)
        return entries

    async def sync_static(
        self,
        key: Key,
        worker: Worker,
        targets: list[registration.Target],
        live: list[dict[str, Any]],
        published: list[dict[str, Any]],
        previous: list[dict[str, Any]],
        ref: dict[str, Any],
        now: str,
        deleting: bool = False,
    ) -> list[dict[str, Any]]:
        """Live Runner (static): upsert the ready pods' runners.json entries (and retire gone ones) to every
        orchestrator with a CLI URL, when they change and every refresh period; report what each orchestrator's
        /discovery lists. Orchestrators without a CLI URL read the ConfigMap at start only: they are observed.
        Deleting: every runner upserted is retired; the entries returned are the orchestrators that failed."""
        old = {e["url"]: e for e in previous}
        labels = {e["label"] for e in live}
        entries = []
        wanted = {t.url for t in targets}
        gone = [self._known.get((key, url)) for url in old if url not in wanted]
        for target in targets:
            self._known[(key, target.url)] = target
        for target in [*targets, *(t for t in gone if t)]:
            mem_key = (key, target.url)
            keep = target.url in wanted and not deleting
            if target.cli_url:
                await self._upsert(key[0], mem_key, target, live if keep else [], published, worker, ref)
            if not keep:
                # Removed from the spec, or the worker is going: its runners were retired there; a failure stays
                # in the status so it is retried (and, deleting, holds the finalizer).
                failed = self._upserted.get(mem_key)
                if failed is not None and failed.error:
                    entries.append({"url": target.url, "lastError": failed.error})
                elif not deleting:
                    self._upserted.pop(mem_key, None)
                    self._known.pop(mem_key, None)
                continue
            try:
                found = static_runners.our_runners(await self._discovery(key[0], target), labels)
            except RegistrationError:
                found = None  # the HTTP port may not be reachable from here; the upsert reply tells enough
            memory = self._upserted.get(mem_key)
            per_pod = worker.spec.sessions_per_pod
            entries.append(
                static_runners.status_entry(target.url, labels, memory, found, per_pod, old.get(target.url), now)
            )
        if deleting or not targets:
            self.forget(key)
        return entries

    async def _upsert(
        self,
        namespace: str,
        mem_key: tuple[Key, str],
        target: registration.Target,
        live: list[dict[str, Any]],
        published: list[dict[str, Any]],
        worker: Worker,
        ref: dict[str, Any],
    ) -> None:
        assert target.cli_url is not None
        memory = self._upserted.get(mem_key)
        document = static_runners.upsert_document(live, static_runners.known_entries(memory, published))
        if not document["runners"]:
            return  # nothing ready and nothing to retire
        digest = static_runners.document_digest(document)
        now = time.monotonic()
        if not static_runners.due(digest, memory, now, float(worker.spec.registration.refresh_seconds)):
            return
        try:
            tls = ssl_context(await self._ca(namespace, target), target.insecure)
            reply = await upsert_runners(self._http(), target.cli_url, document, tls)
        except RegistrationError as exc:
            if not memory or memory.error != str(exc):
                self._post_event(ref, "Warning", "RegistrationFailed", f"{target.cli_url}: {exc}")
            self._upserted[mem_key] = dataclasses.replace(
                memory or static_runners.Upserted(None, now), at=now, error=str(exc)
            )
            return
        healthy = frozenset(str(r.get("label")) for r in reply if r.get("healthy"))
        self._upserted[mem_key] = static_runners.Upserted(digest, now, {e["label"]: e for e in live}, healthy)
        retired = len(document["runners"]) - len(live)
        if memory is None or memory.digest is None or memory.error or retired:
            message = f"upserted {len(live)} runner(s) to {target.cli_url}"
            message += f", retired {retired}" if retired else ""
            self._post_event(ref, "Normal", "Registered", message)

    async def _discovery(self, namespace: str, target: registration.Target) -> Any:
        """An orchestrator's public GET /discovery answer."""
        tls = ssl_context(await self._ca(namespace, target), target.insecure)
        return await discovery(self._http(), target.url, tls)

    async def _ca(self, namespace: str, target: registration.Target) -> str | None:
        if target.ca_secret_name and target.ca_secret_key:
            where = target.secret_namespace or namespace
            return await self._secret_value(where, target.ca_secret_name, target.ca_secret_key)
        return None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar: a cookie one orchestrator sets must never travel with another worker's calls.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def _credentials(self, namespace: str, target: registration.Target) -> tuple[str, ssl.SSLContext | bool]:
        if target.secret_name is None:
            raise RegistrationError("no secretRef: the orchestrator secret is needed to register")
        # A BYOCOrchestrator's secret is read from the operator's namespace, and only ever sent to its own URL.
        secret = await self._secret_value(target.secret_namespace or namespace, target.secret_name, target.secret_key)
        return secret, ssl_context(await self._ca(namespace, target), target.insecure)

    async def _secret_value(self, namespace: str, name: str, key: str) -> str:
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
