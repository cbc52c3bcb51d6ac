"""Registrar pieces without I/O: configuration, worker state parsing, the advert, secrets and redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from byoc_edge.registrar.advert import advertised_capacity, build_advert, runner_status
from byoc_edge.registrar.config import OrchestratorTLS, default_runner_url, load_config
from byoc_edge.registrar.credentials import CredentialError, Redactor, SecretSource
from byoc_edge.registrar.local_worker import WorkerState, parse_gpu, parse_health


def test_config_from_flags_and_environment(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    config = load_config(
        ["--orchestrator", "https://o1:8935/", "--orchestrator", "http://o2:8935", "--secret-file", str(a),
         "--secret-file", str(b), "--app", "live-video-to-video/x", "--orchestrator-tls", "insecure",
         "--orchestrator-tls", str(tmp_path / "ca.pem")],
        {"POD_IP": "10.0.0.9", "POD_NAME": "worker-7f9-abc"},
    )  # fmt: skip
    assert [o.url for o in config.orchestrators] == ["https://o1:8935", "http://o2:8935"]
    assert [o.secret.path for o in config.orchestrators] == [a, b]
    assert config.runner_url == "http://10.0.0.9:8000" and config.runner_id == "worker-7f9-abc"
    assert [o.tls for o in config.orchestrators] == [
        OrchestratorTLS(insecure_skip_verify=True),
        OrchestratorTLS(ca_file=tmp_path / "ca.pem"),
    ]
    assert config.mode == "persistent" and config.capacity == 0

    env = {
        "BYOC_REGISTRAR_ORCHESTRATORS": "http://o1:1, http://o2:2",
        "CAPABILITY_NAME": "cap",
        "BYOC_REGISTRAR_WORKER_URL": "http://127.0.0.1:9000",
        "BYOC_REGISTRAR_MODE": "single_shot",
        "BYOC_REGISTRAR_PRICE_INFO": '{"price": 3.5, "unit": "hour"}',
        "POD_IP": "fd00::5",
        "ORCH_SECRET": "s3cret-value",
    }
    config = load_config([], env)
    assert config.app == "cap" and config.mode == "single-shot" and config.price_info == {"price": 3.5, "unit": "hour"}
    assert config.runner_url == "http://[fd00::5]:9000"
    assert [o.secret.read() for o in config.orchestrators] == ["s3cret-value"] * 2
    assert [o.tls for o in config.orchestrators] == [OrchestratorTLS()] * 2  # system trust unless told
    env["BYOC_REGISTRAR_ORCHESTRATOR_TLS"] = "insecure"  # one for all
    assert [o.tls.insecure_skip_verify for o in load_config([], env).orchestrators] == [True, True]
    assert "s3cret-value" not in repr(config)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--app", "x"], {"POD_IP": "1.2.3.4"}, "no orchestrator"),
        (["--app", "x", "--orchestrator", "http://o"], {}, "POD_IP"),
        (["--orchestrator", "http://o", "--runner-url", "http://p:1"], {}, "app"),
        (["--app", " x", "--orchestrator", "http://o", "--runner-url", "http://p:1"], {}, "trimmed"),
        (["--app", "x", "--orchestrator", "ftp://o", "--runner-url", "http://p:1"], {}, "ftp://o"),
        (["--app", "x", "--orchestrator", "http://o", "--orchestrator", "http://p", "--secret-file", "a",
          "--secret-file", "b", "--secret-file", "c", "--runner-url", "http://p:1"], {}, "one each"),
        (["--app", "x", "--orchestrator", "http://o", "--runner-url", "http://p:1", "--metadata", "m" * 1025],
         {}, "1024"),
        (["--app", "x", "--orchestrator", "http://o", "--orchestrator", "http://p", "--runner-url", "http://p:1",
          "--orchestrator-tls", "system", "--orchestrator-tls", "insecure", "--orchestrator-tls", "c"], {},
         "3 --orchestrator-tls for 2 --orchestrator"),
        (["--app", "x", "--orchestrator", "http://o", "--runner-url", "http://p:1", "--orchestrator-tls", " "], {},
         "empty --orchestrator-tls"),
    ],
)  # fmt: skip
def test_config_errors(args, env, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(args, env)


def test_default_runner_url() -> None:
    assert default_runner_url("http://127.0.0.1:8000", "10.1.1.1") == "http://10.1.1.1:8000"
    assert default_runner_url("https://localhost", "10.1.1.1") == "https://10.1.1.1:443"


def test_worker_state() -> None:
    ours = parse_health({"status": "OK", "active_streams": 2, "capacity": 4, "available": 2, "draining": True})
    assert ours == WorkerState("OK", 2, 4, True) and ours.ready and ours.streaming
    pytrickle = parse_health({"status": "IDLE"})
    assert pytrickle.ready and not pytrickle.streaming and pytrickle.capacity is None
    assert parse_health({"status": "OK"}).streaming  # pytrickle: OK is streaming
    assert not parse_health({"status": "LOADING"}).ready
    assert not WorkerState().streaming  # unreachable: nothing left to wait for
    for bad in ({}, {"status": "HAPPY"}, [], None):
        with pytest.raises(ValueError):
            parse_health(bad)


def test_gpu_from_hardware_info() -> None:
    info = {"gpu_info": {"1": {"id": "b", "name": "B"}, "0": {"id": "GPU-a", "name": "A", "memory_total": 24 << 30}}}
    gpu = parse_gpu(info)
    assert gpu is not None and gpu.to_json() == {"id": "GPU-a", "name": "A", "vram_mb": 24 << 10}
    assert parse_gpu({"gpu_info": {}}) is None and parse_gpu({}) is None and parse_gpu(None) is None


def test_status_and_capacity() -> None:
    assert [runner_status(WorkerState(h)) for h in ("IDLE", "OK", "LOADING", "ERROR", "UNREACHABLE")] == [
        "ready", "ready", "loading", "error", "unreachable",
    ]  # fmt: skip
    assert advertised_capacity(0, WorkerState("IDLE", 0, 4), draining=False, held_sessions=0) == 4
    assert advertised_capacity(2, WorkerState("IDLE", 0, 4), draining=False, held_sessions=0) == 2
    assert advertised_capacity(0, WorkerState("IDLE"), draining=False, held_sessions=0) == 1
    assert advertised_capacity(4, WorkerState("OK", 3, 4), draining=True, held_sessions=3) == 3
    assert advertised_capacity(4, WorkerState("IDLE"), draining=True, held_sessions=0) == 1


def test_advert_while_draining_stays_ready(tmp_path: Path) -> None:
    config = load_config(["--orchestrator", "http://o", "--app", "a", "--runner-url", "http://p:1"], {})
    advert = build_advert(
        config, WorkerState("OK", 2, 4), runner_id="r", draining=True, held_sessions=2, gpu=None, worker_version="1"
    )
    assert (advert.status, advert.capacity, advert.version) == ("ready", 2, "1")


def test_advert_while_draining_with_no_session_hides_the_runner() -> None:
    # Upstream reads capacity 0 as 1: "ready" with none held would still sell a session on a leaving pod.
    config = load_config(["--orchestrator", "http://o", "--app", "a", "--runner-url", "http://p:1"], {})
    advert = build_advert(
        config, WorkerState("IDLE", 0, 4), runner_id="r", draining=True, held_sessions=0, gpu=None, worker_version="1"
    )
    assert (advert.status, advert.capacity) == ("draining", 1)
    assert runner_status(WorkerState("OK", 1, 4), draining=True, held_sessions=1) == "ready"


def test_advert_carries_the_price_on_chain_orchestrators_require() -> None:
    price = '{"price": "0.5", "currency": "usd", "unit": "hour"}'
    config = load_config(
        ["--orchestrator", "http://o", "--app", "a", "--runner-url", "http://p:1", f"--price-info={price}"], {}
    )
    advert = build_advert(
        config, WorkerState("IDLE", 0, 1), runner_id="r", draining=False, held_sessions=0, gpu=None, worker_version=""
    )
    assert advert.to_json()["price_info"] == {"price": "0.5", "currency": "usd", "unit": "hour"}


def test_secret_sources(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  value-1\n")
    assert SecretSource(path).read() == "value-1"
    assert SecretSource(None, "X", {"X": "v2"}).read() == "v2"
    with pytest.raises(CredentialError, match="empty"):
        SecretSource(None, "X", {}).read()
    with pytest.raises(CredentialError) as info:
        SecretSource(tmp_path / "missing").read()
    assert "missing" in str(info.value)
    assert "v2" not in repr(SecretSource(None, "X", {"X": "v2"}))


def test_redactor_masks_messages_and_tracebacks() -> None:
    redactor = Redactor()
    redactor.add("hunter22")
    redactor.add("ab")  # too short to mask safely: ignored
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "auth %s failed", ("hunter22",), None)
    try:
        raise RuntimeError("token hunter22 rejected")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert redactor.filter(record)
    text = record.getMessage()
    assert "hunter22" not in text and "[redacted]" in text and "RuntimeError" in text
    assert redactor.secrets == {"hunter22"}
