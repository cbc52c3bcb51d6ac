"""`byoc-testenv`: build the binaries, run a local cluster, talk to it.

    byoc-testenv build                      build/cache every binary (with progress)
    byoc-testenv up [--nodes N ...]         start a cluster; prints KUBECONFIG; runs until Ctrl-C (or --detach)
    byoc-testenv down [--name NAME]         stop clusters started by `up` (all by default)
    byoc-testenv status                     list clusters started on this machine
    byoc-testenv kubeconfig                 print the kubeconfig path of the newest cluster
    byoc-testenv kubectl ARGS...            cached kubectl against the newest cluster
    byoc-testenv helm ARGS...               cached helm against the newest cluster
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from . import build, cluster, tools, versions
from .nodes import CPUNodeGroup, GPUNodeGroup, NodeGroup, mig_resource
from .progress import Progress


def parse_mig(specs: Sequence[str]) -> dict[str, int]:
    """['1g.10gb=7', '2g.20gb=2'] -> {'1g.10gb': 7, '2g.20gb': 2}."""
    out: dict[str, int] = {}
    for spec in specs:
        profile, sep, count = spec.partition("=")
        if not sep or not count.isdigit():
            raise argparse.ArgumentTypeError(f"--mig wants PROFILE=COUNT like 1g.10gb=7, got {spec!r}")
        mig_resource(profile)  # validates
        out[profile] = int(count)
    return out


def node_groups_from_args(args: argparse.Namespace) -> list[NodeGroup]:
    """The `up` flags as node groups; the defaults give nodes.default_node_groups()."""
    groups: list[NodeGroup] = []
    if args.nodes:
        groups.append(GPUNodeGroup("gpu-" + _short(args.gpu_product), count=args.nodes,
                                   gpus_per_node=args.gpus_per_node, gpu_product=args.gpu_product))
    mig = parse_mig(args.mig if args.mig is not None else ["1g.10gb=7"])
    if mig and args.mig_nodes:
        groups.append(GPUNodeGroup("gpu-" + _short(args.mig_product) + "-mig", count=args.mig_nodes,
                                   gpus_per_node=0, gpu_product=args.mig_product, mig=mig))
    if args.cpu_nodes:
        groups.append(CPUNodeGroup("cpu", count=args.cpu_nodes))
    return groups


def _short(product: str) -> str:
    """'NVIDIA-H100-80GB-HBM3' -> 'h100' (a node-name friendly model name)."""
    parts = [p for p in product.lower().split("-") if p not in ("nvidia", "tesla", "geforce")]
    return (parts[0] if parts else "gpu")[:20]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="byoc-testenv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build and cache every binary")
    b.add_argument("--quiet", action="store_true")

    up = sub.add_parser("up", help="start a cluster and keep it running until Ctrl-C (or --detach)")
    up.add_argument("--nodes", type=int, default=3, help="GPU nodes (default 3)")
    up.add_argument("--gpus-per-node", type=int, default=4, help="nvidia.com/gpu per GPU node (default 4)")
    up.add_argument("--gpu-product", default="NVIDIA-H100-80GB-HBM3", help="nvidia.com/gpu.product of GPU nodes")
    up.add_argument("--mig", action="append", metavar="PROFILE=COUNT",
                    help="MIG resources per MIG node, repeatable (default 1g.10gb=7)")
    up.add_argument("--mig-nodes", type=int, default=1, help="nodes with the --mig resources (default 1; 0: none)")
    up.add_argument("--mig-product", default="NVIDIA-A100-SXM4-80GB", help="GPU product of the MIG nodes")
    up.add_argument("--cpu-nodes", type=int, default=1, help="CPU-only nodes (default 1)")
    up.add_argument("--name", help="cluster name (default: unique)")
    up.add_argument("--detach", action="store_true", help="leave the cluster running and return")
    up.add_argument("--timeout", type=float, default=180.0)

    down = sub.add_parser("down", help="stop clusters started by `up`")
    down.add_argument("--name", help="only this cluster")

    sub.add_parser("status", help="list clusters started on this machine")
    sub.add_parser("kubeconfig", help="print the newest cluster's kubeconfig path")
    sub.add_parser("kubectl", help="run the cached kubectl against the newest cluster", add_help=False)
    sub.add_parser("helm", help="run the cached helm against the newest cluster", add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # kubectl/helm take their arguments verbatim (argparse would eat their flags).
    if argv and argv[0] in ("kubectl", "helm"):
        return _passthrough(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (build.BuildError, cluster.ClusterError) as e:
        print(f"byoc-testenv: {e}", file=sys.stderr)
        return 1


def _build(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.quiet)
    dirs = build.ensure_all(progress)
    for key, path in dirs.items():
        print(f"{key}: {path}")
    try:  # the trickle test server, when that module is present, is part of the same environment
        from . import trickle
    except ImportError:
        return 0
    try:
        print(f"trickle: {trickle.build_trickle_server()}")
    except RuntimeError as e:
        print(f"byoc-testenv: trickle server: {e}", file=sys.stderr)
        return 1
    return 0


def _up(args: argparse.Namespace) -> int:
    groups = node_groups_from_args(args)
    c = cluster.Cluster.start(groups, name=args.name, detached=args.detach, timeout=args.timeout)
    nodes = c.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product").stdout
    print(nodes, end="")
    print(f"kubeconfig: {c.kubeconfig}")
    print(f"export KUBECONFIG={c.kubeconfig}", flush=True)
    if args.detach:
        print(f"cluster {c.name} left running; stop it with: byoc-testenv down --name {c.name}", flush=True)
        return 0
    # Signals only set a flag: the cluster is stopped below whatever moment the signal lands.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        print("running; Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        c.stop()
    return 0


def _down(args: argparse.Namespace) -> int:
    entries = [e for e in cluster.registered() if not args.name or e["name"] == args.name]
    if not entries:
        print("no clusters" + (f" named {args.name}" if args.name else ""))
        return 0 if not args.name else 1
    progress = Progress()
    for entry in entries:
        _stop_entry(entry, progress)
    return 0


def _stop_entry(entry: dict, progress: Progress) -> None:
    """Ask a running `up` to stop its own cluster; remove it directly if that does not happen."""
    if not entry.get("detached") and cluster.owner_alive(entry) and entry["owner_pid"] != os.getpid():
        os.kill(entry["owner_pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (cluster.registry_dir() / f"{entry['name']}.json").exists():
            time.sleep(0.2)
    cluster.remove_cluster(entry, progress)


def _status(args: argparse.Namespace) -> int:
    entries = cluster.registered()
    print(f"cache: {build.cache_root()} (cached: {'yes' if tools.is_cached() else 'no'}; "
          f"kubernetes {versions.KUBERNETES}, kwok {versions.KWOK}, etcd {versions.ETCD})")
    for e in entries:
        owner = "detached" if e.get("detached") else (
            f"owned by pid {e['owner_pid']}" if cluster.owner_alive(e) else "stale")
        print(f"{e['name']}\t{owner}\t{e['kubeconfig']}")
    if not entries:
        print("no clusters")
    return 0


def newest_kubeconfig() -> Path | None:
    """$BYOC_TESTENV_KUBECONFIG, else the cluster named $BYOC_TESTENV_CLUSTER, else the newest live one."""
    env = os.environ.get("BYOC_TESTENV_KUBECONFIG")
    if env:
        return Path(env)
    name = os.environ.get("BYOC_TESTENV_CLUSTER")
    for e in reversed(cluster.registered()):
        if name and e["name"] != name:
            continue
        if Path(e["kubeconfig"]).exists() and (e.get("detached") or cluster.owner_alive(e)):
            return Path(e["kubeconfig"])
    return None


def _kubeconfig(args: argparse.Namespace) -> int:
    kc = newest_kubeconfig()
    if not kc:
        print("byoc-testenv: no running cluster (start one with `byoc-testenv up`)", file=sys.stderr)
        return 1
    print(kc)
    return 0


def _passthrough(tool: str, rest: list[str]) -> int:
    kc = newest_kubeconfig()
    if not kc:
        print("byoc-testenv: no running cluster (start one with `byoc-testenv up`)", file=sys.stderr)
        return 1
    path = tools.kubectl_path() if tool == "kubectl" else tools.helm_path()
    os.environ["KUBECONFIG"] = str(kc)
    os.execv(path, [str(path), *rest])


COMMANDS = {"build": _build, "up": _up, "down": _down, "status": _status, "kubeconfig": _kubeconfig}

if __name__ == "__main__":
    sys.exit(main())
