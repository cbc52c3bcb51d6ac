"""What the operator does with an orchestrator that answers unlike one: a redirect is not followed (the status
says so), and a huge reply never reaches status or Events. Real HTTP peers on 127.0.0.1, real operator and
API server."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from byoc_testenv.local_http import serving
from byoc_testenv.orchestrator.process import orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube import Client

from tests.support.operator import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

SECRET = "orch-secret-NEVER-SHOWN-90ab"


class Peer:
    """An aiohttp app served on 127.0.0.1 from its own thread and loop (the tests poll synchronously)."""

    def __init__(self, app: web.Application) -> None:
        self.seen: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        started = threading.Event()
        self.url = ""

        async def run() -> None:
            async with serving(app) as url:
                self.url = url
                started.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(run(),), daemon=True)
        self._thread.start()
        assert started.wait(10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def answering(handler: Any) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.fixture
def recorder() -> Iterator[Peer]:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        return web.Response(text="ok")

    peer = Peer(answering(handle))
    peer.seen = seen
    yield peer
    peer.close()


def secret_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "orch", "namespace": namespace},
        "data": {"secret": base64.b64encode(SECRET.encode()).decode()},
    }


def worker_spec(url: str, capability: str) -> dict[str, Any]:
    return {
        "capability": {"name": capability},
        "gpu": {"count": 0},
        "registration": {"refreshSeconds": 5},
        "orchestrators": [orchestrator_spec(url, "orch")],
    }


def failed_entry(kube: Client, name: str, namespace: str) -> dict[str, Any] | None:
    obj = get_worker(kube, name, namespace)
    entries = (obj.get("status") or {}).get("orchestrators") or []
    if entries and entries[0].get("lastError") and condition(obj, "Registered").get("reason") == "RegistrationFailed":
        return obj
    return None


def test_a_redirecting_orchestrator_is_not_followed_and_status_says_so(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, recorder: Peer
) -> None:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{recorder.url}/transferTokens?to=0xATTACKER")

    redirector = Peer(answering(redirect))
    try:
        kubectl_apply(cluster, secret_manifest(namespace))
        kubectl_apply(cluster, worker_manifest("redir", namespace, worker_spec(redirector.url, "redir-cap")))
        obj = wait_for(lambda: failed_entry(kube, "redir", namespace), 90, what="RegistrationFailed")
    finally:
        redirector.close()
    (entry,) = obj["status"]["orchestrators"]
    assert entry["lastError"] == "HTTP 307: the orchestrator redirected; redirects are not followed"
    assert "redirects are not followed" in condition(obj, "Registered")["message"]
    assert recorder.seen == []  # neither the secret nor the request went where the redirect pointed


def test_a_huge_reply_body_does_not_land_in_status_or_events(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=500)
        await resp.prepare(request)
        await resp.write(b"<signature>" + b"A" * 4096 + b"</signature>")
        while True:  # and never ends
            await resp.write(b"B" * 65536)
            await asyncio.sleep(0)

    peer = Peer(answering(huge))
    try:
        kubectl_apply(cluster, secret_manifest(namespace))
        kubectl_apply(cluster, worker_manifest("huge", namespace, worker_spec(peer.url, "huge-cap")))
        obj = wait_for(lambda: failed_entry(kube, "huge", namespace), 90, what="RegistrationFailed")
    finally:
        peer.close()
    (entry,) = obj["status"]["orchestrators"]
    # Status code and a short excerpt, not the body (nor a timeout: the rest of the body was never read).
    assert entry["lastError"].startswith("HTTP 500: <signature>AAAA") and len(entry["lastError"]) <= 210
    assert len(condition(obj, "Registered")["message"]) < 300
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    messages = [e["message"] for e in events if e["involvedObject"]["kind"] == "BYOCWorker"]
    assert messages and all(len(m) < 300 and "BBBB" not in m for m in messages)
