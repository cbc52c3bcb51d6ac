"""Pure parts of the router: payload parsing, pins, pod lists and sources, start order, configuration."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from byoc_edge.router.config import load_config
from byoc_edge.router.load import IDLE, LOADING, OK, PodLoad, parse_health, parse_status
from byoc_edge.router.pins import PinTable
from byoc_edge.router.placement import Pod, start_order, totals
from byoc_edge.router.pods import DnsPods, FilePods, PodSourceError, normalize_pod_url, parse_pod_list

# -- payloads ----------------------------------------------------------------------------------------------


def test_parse_runtime_status():
    load = parse_status(
        {
            "state": "OK",
            "active_streams": 2,
            "capacity": 3,
            "sessions": [
                {"stream_id": "s1", "gateway_request_id": "g1"},
                {"stream_id": "s2", "gateway_request_id": "s2"},
            ],
        }
    )
    assert load == PodLoad(OK, 2, 3, (frozenset({"s1", "g1"}), frozenset({"s2"})), True)
    assert load.free(4) == 1 and load.free(2) == 0  # the smaller of configured and reported slots


def test_parse_pytrickle_status():
    running = parse_status(
        {"state": "OK", "active_streams": 1, "client_running": True, "current_params": {"gateway_request_id": "g"}}
    )
    assert running.streams == (frozenset({"g"}),) and running.streams_known and running.free(1) == 0
    ended = parse_status({"state": "IDLE", "active_streams": 0, "client_running": False, "current_params": {}})
    assert ended.streams == () and ended.streams_known and ended.free(1) == 1
    assert parse_status({"state": "LOADING", "active_streams": 0}).free(1) == 0


def test_parse_health():
    assert parse_health({"status": "IDLE"}) == PodLoad(IDLE, 0, None, (), True)
    assert parse_health({"status": "OK"}).active == 1 and not parse_health({"status": "OK"}).streams_known
    assert parse_health({"status": "OK", "active_streams": 1, "capacity": 4}).free(4) == 3
    assert parse_health("nonsense").state == "UNKNOWN"


def test_load_estimates():
    load = PodLoad(IDLE, 0, 2).with_started(frozenset({"a"}))
    assert (load.state, load.active, load.free(2)) == (OK, 1, 1)
    assert load.full(2).free(2) == 0
    assert load.with_stopped("a") == PodLoad(IDLE, 0, 2, (), False)


# -- pins --------------------------------------------------------------------------------------------------


def test_pins_share_aliases():
    pins = PinTable()
    pins.pin({"sid", "gid"}, "http://a", now=1)
    assert pins.get("sid") == pins.get("gid") == "http://a" and len(pins) == 1
    pins.unpin("gid")
    assert pins.get("sid") is None and len(pins) == 0


def test_reconcile_adds_moves_and_drops_stale_only():
    pins = PinTable()
    pins.pin({"old"}, "http://a", now=1)
    pins.pin({"moved"}, "http://b", now=1)
    pins.pin({"fresh"}, "http://a", now=10)  # placed while the poll (started at 5) was in flight
    added, dropped = pins.reconcile("http://a", [frozenset({"moved"}), frozenset({"new", "new-gw"})], polled_at=5)
    assert (added, dropped) == (2, 1)
    assert pins.get("old") is None and pins.get("fresh") == "http://a"
    assert pins.get("moved") == pins.get("new-gw") == "http://a"
    assert pins.reconcile("http://a", [frozenset({"moved"}), frozenset({"new"})], polled_at=20) == (0, 1)  # fresh


# -- pods --------------------------------------------------------------------------------------------------


def test_pod_urls():
    assert normalize_pod_url("10.0.0.7") == "http://10.0.0.7:8000"
    assert normalize_pod_url("pod:9000", 1) == "http://pod:9000"
    assert normalize_pod_url("https://pod/", 443) == "https://pod:443"
    assert normalize_pod_url("fd00::1", 8000) == "http://[fd00::1]:8000"
    assert parse_pod_list("a:1, b:2\n# c:3\na:1 d:4 # e") == ["http://a:1", "http://b:2", "http://d:4"]
    with pytest.raises(ValueError):
        normalize_pod_url("ftp://x")


async def test_file_source_is_reread(tmp_path: Path):
    path = tmp_path / "pods"
    source = FilePods(path)
    with pytest.raises(PodSourceError):
        await source.discover()
    path.write_text("127.0.0.1:1\n")
    assert await source.discover() == ["http://127.0.0.1:1"]
    path.write_text("127.0.0.1:1, 127.0.0.1:2\n")
    assert await source.discover() == ["http://127.0.0.1:1", "http://127.0.0.1:2"]


async def test_dns_source():
    async def resolver(host, port, type):
        assert (host, port, type) == ("pods.ns.svc", 9000, socket.SOCK_STREAM)
        return [(2, 1, 6, "", ("10.0.0.2", 9000)), (2, 1, 6, "", ("10.0.0.1", 9000)), (2, 1, 6, "", ("10.0.0.2", 9000))]

    assert await DnsPods("pods.ns.svc:9000", resolver=resolver).discover() == [
        "http://10.0.0.1:9000",
        "http://10.0.0.2:9000",
    ]

    async def nxdomain(*args, **kw):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def broken(*args, **kw):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    assert await DnsPods("gone", resolver=nxdomain).discover() == []  # a headless Service with no ready pod
    with pytest.raises(PodSourceError):
        await DnsPods("flaky", resolver=broken).discover()  # keep what was known
    assert "http://127.0.0.1:8000" in await DnsPods("localhost").discover()  # the real resolver


# -- placement ---------------------------------------------------------------------------------------------


def test_start_order():
    pods = [
        Pod("http://full", PodLoad(OK, 2, None)),
        Pod("http://unknown"),
        Pod("http://one", PodLoad(OK, 1, None)),
        Pod("http://two", PodLoad(IDLE, 0, None)),
        Pod("http://loading", PodLoad(LOADING, 0, None)),
        Pod("http://error", PodLoad("ERROR", 0, None)),
        Pod("http://leaving", PodLoad(IDLE, 0, None), accepting=False),
        Pod("http://reserved", PodLoad(IDLE, 0, None), reserved=2),
    ]
    assert start_order(pods, 2) == ["http://two", "http://one", "http://unknown", "http://loading"]
    assert totals(pods, 2) == (10, 3)  # known, accepting, not erroring pods


# -- configuration -----------------------------------------------------------------------------------------


def test_config_flags_env_and_token():
    config = load_config(
        ["--pods", "10.0.0.1,10.0.0.2:9000", "--pod-port", "7000", "--sessions-per-pod", "2", "--token-env", "TOK"],
        {"TOK": "secret", "BYOC_ROUTER_PORT": "9999"},
    )
    assert (config.port, config.sessions_per_pod, config.token) == (9999, 2, "secret")
    assert config.pod_source().urls == ["http://10.0.0.1:7000", "http://10.0.0.2:9000"]
    assert load_config(["--pods-dns", "svc"], {}).pod_source().describe() == "DNS svc port 8000"
    with pytest.raises(ValueError, match="no pod source"):
        load_config([], {})
    with pytest.raises(ValueError, match="sessions_per_pod"):
        load_config(["--pods", "a", "--sessions-per-pod", "0"], {})
