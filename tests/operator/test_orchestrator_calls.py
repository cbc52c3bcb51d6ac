"""The operator's calls to orchestrators against real HTTP peers on 127.0.0.1: URLs are joined and checked,
redirects are never followed, replies are read only so far."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web
from byoc_operator.autoscale import Autoscaler
from byoc_operator.orchestrator import RegistrationError, discovery, endpoint, register, upsert_runners
from byoc_operator.replies import read_bounded
from byoc_operator.slots import RouterSlots
from byoc_testenv.local_http import serving

SECRET = "orch-secret-NEVER-SHOWN-5e2a"


def recorder() -> tuple[web.Application, list[str]]:
    """Answers everything 200 and notes each request it gets."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        return web.json_response({"runners": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app, seen


def redirector(target: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{target}/transferTokens?to=attacker")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def endless(status: int) -> web.Application:
    """Answers `status` with a body that never ends."""

    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=status)
        await resp.prepare(request)
        while True:
            await resp.write(b"x" * 65536)
            await asyncio.sleep(0)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def test_paths_are_joined_to_the_base_url() -> None:
    assert str(endpoint("http://o:8935", "capability", "register")) == "http://o:8935/capability/register"
    assert str(endpoint("https://o/prefix", "discovery")) == "https://o/prefix/discovery"
    assert str(endpoint("https://o/prefix/", "discovery")) == "https://o/prefix/discovery"


@pytest.mark.parametrize(
    "base",
    [
        "http://orch:7935/transferTokens?to=0xATTACKER#",
        "http://orch:7935/signMessage#",
        "http://orch:7935/x?",
        "http://user:pass@orch:8935",
        "ftp://orch",
        "file:///etc/passwd",
    ],
)
def test_a_base_url_with_query_fragment_or_user_info_is_refused(base: str) -> None:
    with pytest.raises(RegistrationError, match="URL refused: must be an http"):
        endpoint(base, "capability", "register")


async def test_a_redirect_is_not_followed_and_the_error_says_so() -> None:
    app, seen = recorder()
    async with serving(app) as target, serving(redirector(target)) as redirecting:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(RegistrationError) as raised:
                await register(session, redirecting, SECRET, {"name": "cap"}, True)
            with pytest.raises(RegistrationError):
                await upsert_runners(session, redirecting, {"runners": []}, True)
            with pytest.raises(RegistrationError):
                await discovery(session, redirecting, True)
    assert str(raised.value) == "HTTP 307: the orchestrator redirected; redirects are not followed"
    assert seen == []


async def test_an_endless_error_body_is_cut_and_sanitised() -> None:
    async with serving(endless(500)) as url, aiohttp.ClientSession() as session:
        started = time.monotonic()
        with pytest.raises(RegistrationError) as raised:
            await register(session, url, SECRET, {"name": "cap"}, True)
        # Read only so far, not until the 10 s call timeout.
        assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith("HTTP 500: xxx") and len(message) < 300


async def test_an_endless_json_reply_is_refused_not_read_whole() -> None:
    async with serving(endless(200)) as url, aiohttp.ClientSession() as session:
        with pytest.raises(RegistrationError, match="answered more than"):
            await discovery(session, url, True)
        with pytest.raises(RegistrationError, match="answered more than"):
            await upsert_runners(session, url, {"runners": []}, True)


async def test_an_error_body_reflecting_the_secret_is_masked() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=401, text=f"bad\nauthorization {request.headers['Authorization']}\x1b[31m")

    app = web.Application()
    app.router.add_post("/capability/register", handle)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        with pytest.raises(RegistrationError) as raised:
            await register(session, url, SECRET, {"name": "cap"}, True)
    assert str(raised.value) == "HTTP 401: bad authorization *** [31m"


async def test_read_bounded_stops_at_the_limit() -> None:
    async with serving(endless(200)) as url, aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            data, more = await read_bounded(resp, 100_000)
    assert len(data) == 100_000 and more


async def test_pod_health_polls_follow_no_redirect() -> None:
    """A tenant's image answering /health with a redirect (review C1) steers neither the autoscaler nor the
    router slot poller to another URL."""
    app, seen = recorder()

    async def healthy_elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{target}/health")

    async with serving(app) as target:
        redirecting = web.Application()
        redirecting.router.add_get("/{tail:.*}", healthy_elsewhere)
        async with serving(redirecting) as url:
            host, port = url.removeprefix("http://").split(":")
            autoscaler = Autoscaler(None, None, lambda *a: None, lambda: "")  # type: ignore[arg-type]
            slots = RouterSlots()
            try:
                assert await autoscaler._health(host, int(port)) is None
                assert await slots.read([url]) is None
            finally:
                await autoscaler.close()
                await slots.close()
    assert seen == []
