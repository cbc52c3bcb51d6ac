"""Start requests name URLs the worker opens; with ``allowed_origins`` set only those origins are opened, and no
client in the runtime follows a redirect (security review C2, L7). A recording server on another loopback address
stands for whatever a gateway would like the pod to reach (cloud metadata, an in-cluster API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from byoc_edge.liverunner import SessionContext
from byoc_edge.schema import URL_FIELDS
from byoc_runtime import trickle
from byoc_runtime.liverunner.control import CallbackError, create_channels, stop_session
from byoc_runtime.origins import AllowedOrigins, OriginSource, origin_of

from .support import Stream, running_worker

pytestmark = pytest.mark.trickle


@dataclass
class Site:
    """A real HTTP server that records every request; ``redirect_to`` makes it answer 307 to that URL."""

    server: TestServer
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@contextlib.asynccontextmanager
async def site(host: str, redirect_to: str | None = None) -> AsyncIterator[Site]:
    recorded: list[str] = []

    async def anything(request: web.Request) -> web.StreamResponse:
        recorded.append(f"{request.method} {request.path_qs}")
        if redirect_to is not None:
            raise web.HTTPTemporaryRedirect(redirect_to + request.path_qs)
        return web.json_response({"AccessKeyId": "AKIA-secret", "channels": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    server = TestServer(app, host=host)
    await server.start_server()
    try:
        yield Site(server, recorded)
    finally:
        await server.close()


async def test_a_start_naming_another_origin_is_refused_and_never_opened(trickle_server) -> None:
    allowed = origin_of(trickle_server.url("x"))
    async with site("127.0.0.2") as elsewhere, running_worker(allowed_origins=(allowed,)) as rt:
        await rt.wait_health("IDLE")
        for name in URL_FIELDS:
            stream = Stream.create(trickle_server)
            status, body = await rt.post(
                "/stream/start", json=stream.start_body(**{name: f"{elsewhere.url}/latest/meta-data#"})
            )
            assert (status, body["reason"]) == (400, "origin"), body
            assert name in body["message"] and "127.0.0.2" not in str(body), body  # the field, never the URL
        assert elsewhere.hits == [] and len(rt.worker.sessions) == 0


async def test_a_url_on_the_allowed_origin_may_not_cut_its_path_off(trickle_server) -> None:
    stream = Stream.create(trickle_server)
    allowed = origin_of(stream.url())
    host_port = allowed.split("://")[1]
    async with running_worker(allowed_origins=(allowed,)) as rt:
        await rt.wait_health("IDLE")
        for url in (f"{stream.url('-control')}#", f"{stream.url('-control')}?x=1", f"http://u:p@{host_port}/c"):
            status, body = await rt.post("/stream/start", json=stream.start_body(control_url=url))
            assert (status, body["reason"]) == (400, "origin") and "control_url" in body["message"], body
        status, body = await rt.post("/stream/start", json=stream.start_body())
        assert status == 200, body  # the orchestrator's own channels
        assert len(rt.worker.sessions) == 1


async def test_live_runner_session_control_on_another_origin_is_refused_before_any_callback(trickle_server) -> None:
    allowed = origin_of(trickle_server.url("x"))
    async with site("127.0.0.2") as elsewhere, running_worker(allowed_origins=(allowed,)) as rt:
        await rt.wait_health("IDLE")
        headers = {
            "Livepeer-Session-Id": "lr-1",
            "Livepeer-Session-Token": "tok",
            "Livepeer-Session-Control": f"{elsewhere.url}/session",
        }
        status, body = await rt.post("/live-video-to-video", json={"params": {}}, headers=headers)
        assert (status, body["reason"]) == (400, "origin") and "Livepeer-Session-Control" in body["message"], body
        assert "127.0.0.2" not in str(body)
        assert elsewhere.hits == [] and len(rt.worker.sessions) == 0


async def test_with_no_list_any_origin_is_taken_and_said_so_at_start(trickle_server, caplog) -> None:
    async with site("127.0.0.2") as elsewhere, running_worker() as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        status, body = await rt.post("/stream/start", json=stream.start_body(data_url=f"{elsewhere.url}/d"))
        assert status == 200, body  # local use and pytrickle callers: as before
    assert any("any origin" in r.getMessage() for r in caplog.records)


def test_origin_entries_are_checked() -> None:
    origins = AllowedOrigins.parse(["https://Orch.example:8935", "http://10.0.0.5"])
    assert origins.origins == {"https://orch.example:8935", "http://10.0.0.5:80"}
    assert origins.refusal("https://orch.example:8935/ai/trickle/s-control") is None
    assert origins.refusal("http://10.0.0.5:80/ai/trickle/s") is None
    assert origins.refusal("https://orch.example:8936/ai/trickle/s") is not None
    assert origins.refusal("ftp://orch.example:8935/x") == "must be an http(s) URL"
    for bad in ("http://orch/path", "http://u@orch", "http://orch?x", "orch:8935"):
        with pytest.raises(ValueError, match="not an origin"):
            AllowedOrigins.parse([bad])


# -- redirects ----------------------------------------------------------------------------------------------


async def test_trickle_clients_do_not_follow_redirects() -> None:
    async with site("127.0.0.2") as target, site("127.0.0.3", redirect_to=target.url) as redirector:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(trickle.TrickleError):
                async with trickle.Subscriber(f"{redirector.url}/ch", session=http) as sub:
                    await sub.next()
            publisher = trickle.Publisher(f"{redirector.url}/out", session=http, mime_type="video/mp2t")
            with contextlib.suppress(trickle.TrickleError):
                await publisher.write_segment(b"\x47" * 188)
            await publisher.close(delete=True)
        methods = {hit.split()[0] for hit in redirector.hits}
        assert {"GET", "POST", "DELETE"} <= methods, redirector.hits  # every client asked the redirector...
        assert target.hits == []  # ...and none went where it pointed


async def test_live_runner_callbacks_do_not_follow_redirects() -> None:
    async with site("127.0.0.2") as target, site("127.0.0.3", redirect_to=target.url) as redirector:
        context = SessionContext("lr-1", "tok", f"{redirector.url}/session")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(CallbackError):
                await create_channels(http, context)
            assert await stop_session(http, context, retry_for_s=0) is False
        assert len(redirector.hits) == 2 and target.hits == []


async def test_origins_from_a_file_follow_it_and_an_unreadable_one_allows_nothing(trickle_server, tmp_path) -> None:
    """What the operator's ConfigMap volume gives: a start is taken once its origin is listed in the file, refused
    again when the file no longer lists it, and refused while the file is missing or broken."""
    listed = tmp_path / "origins"
    allowed = origin_of(trickle_server.url("x"))
    assert allowed is not None
    async with running_worker(allowed_origins_file=listed) as rt:
        await rt.wait_health("IDLE")

        async def start() -> tuple[int, dict]:
            stream = Stream.create(trickle_server)
            status, body = await rt.post("/stream/start", json=stream.start_body())
            if status == 200:
                await rt.post("/stream/stop", json={}, headers={"X-Stream-Id": stream.sid})
            return status, body

        assert (await start())[1]["reason"] == "origin"  # no file yet: nothing allowed
        listed.write_text(f"http://127.0.0.9:1\n{allowed}\n")
        assert (await start())[0] == 200
        listed.write_text("http://127.0.0.9:1\n")  # a new file (a ConfigMap update swaps it)
        assert (await start())[1]["reason"] == "origin"
        listed.write_text(f"{allowed}/a/path\n")  # not an origin: the whole file is refused
        assert (await start())[1]["reason"] == "origin"
        listed.write_text(f"{allowed}\n")
        assert (await start())[0] == 200


def test_an_empty_file_restricts_and_fixed_origins_still_apply(tmp_path) -> None:
    listed = tmp_path / "origins"
    listed.write_text("")
    source = OriginSource(AllowedOrigins.parse(["https://fixed.example:8935"]), listed)
    current = source.current()
    assert not current.any and current.origins == {"https://fixed.example:8935"}
    assert current.refusal("https://fixed.example:8935/ai/trickle/x") is None
    assert current.refusal("http://127.0.0.2:80/x") is not None
    assert OriginSource(AllowedOrigins()).current().any  # nothing configured: local use
