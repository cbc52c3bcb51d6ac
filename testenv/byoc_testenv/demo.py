"""The README's main command: a local cluster with fake GPU nodes, the CRD, the operator, a BYOCWorker.

    python -m byoc_testenv.demo [--keep] [--example examples/minimal.yaml]

Everything it starts listens on 127.0.0.1 and is stopped at the end (or on Ctrl-C with --keep).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from byoc_testenv.cluster import Cluster
from byoc_testenv.progress import Progress


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_operator(cluster: Cluster, log_path: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "byoc_operator.main", "--liveness", f"http://127.0.0.1:{port}/healthz"],
        env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the operator exited early; its log:\n{log_path.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.3)
    raise SystemExit("the operator did not come up within 60 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (for crds/ and examples/)")
    parser.add_argument("--example", type=Path, default=Path("examples/minimal.yaml"))
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args(argv)
    progress = Progress()
    example = args.example if args.example.is_absolute() else args.repo / args.example

    progress.say("starting a local control plane with fake GPU nodes")
    with Cluster.start(progress=progress) as cluster:
        print(cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product").stdout, flush=True)
        progress.say("installing the BYOCWorker CRD")
        cluster.kubectl("apply", "--server-side", "-f", str(args.repo / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd/byocworkers.byoc.livepeer.org")
        log_path = Path(cluster.home or ".") / "operator.log"
        progress.say(f"starting the operator (log: {log_path})")
        operator = start_operator(cluster, log_path)
        try:
            progress.say(f"applying {example}")
            print(cluster.kubectl("apply", "-n", "default", "-f", str(example)).stdout, flush=True)
            name = cluster.get("byocworkers", namespace="default")["items"][0]["metadata"]["name"]
            progress.say(f"waiting for byocworker/{name} to be Ready")
            cluster.kubectl("wait", "-n", "default", "--for=condition=Ready", f"byocworker/{name}",
                            "--timeout=180s", timeout=200)
            print(cluster.kubectl("get", "byocworkers", "-n", "default", "-o", "wide").stdout)
            print(cluster.kubectl("get", "pods", "-n", "default", "-o", "wide").stdout)
            print(cluster.kubectl("get", "events", "-n", "default", "--field-selector",
                                  "involvedObject.kind=BYOCWorker").stdout, flush=True)
            if args.keep:
                print(f"export KUBECONFIG={cluster.kubeconfig}\nRunning; Ctrl-C stops everything.", flush=True)
                while operator.poll() is None:
                    time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            operator.terminate()
            operator.wait(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
