"""The README's main command: a local cluster with fake GPU nodes, the CRD, the operator and a BYOCWorker whose
pods really run, registered with a test orchestrator that then takes a live stream through it.

    python -m byoc_testenv.demo [--keep] [--example examples/minimal.yaml] [--processor grayscale] [--out DIR]

It starts the cluster, the launcher (runs the worker and router pods as local processes, emulates Services and
cluster DNS: byoc_testenv.launcher), a trickle server, the test orchestrator and the operator; applies the
example with the orchestrator named; waits for Ready and Registered; starts a stream through the test gateway
(``byoc_testenv.gateway``: what go-livepeer's gateway does, so the orchestrator calls the registered router URL),
which publishes a test pattern in real time and reads the processed output back; saves input and output side by
side as a PNG. Everything listens on 127.0.0.0/8 and is stopped at the end (or on Ctrl-C with --keep).

The stream helpers are shared with tests/e2e: ``play_through`` and ``matched_frames`` for gateway streams,
``grayness``; ``start_stream``, ``play`` and ``stop_stream`` drive a stream by hand through the orchestrator's
test-only routes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from byoc_testenv.cluster import Cluster
from byoc_testenv.operator_process import OperatorProcess
from byoc_testenv.polling import wait_for
from byoc_testenv.progress import Progress

DEMO_SECRET = "demo-orchestrator-secret"
PARAMS = {"width": 320, "height": 180}




@contextlib.contextmanager
def operator_process(cluster: Cluster, log_path: Path, env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
    """The operator for the demo and the e2e tests. They name their orchestrator in the worker's namespace, which
    the operator (like the chart) only allows when told so (docs/security.md)."""
    defaults = {"KUBECONFIG": str(cluster.kubeconfig), "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS": "true"}
    proc = OperatorProcess({**os.environ, **defaults, **(env or {})}, log_path).start()
    try:
        yield proc
    finally:
        proc.stop(15)


# -- a stream through the test gateway ------------------------------------------------------------------------


async def play_through(stream: Any, *, first_output_timeout: float = 60.0, quiet: float = 5.0,
                       on_progress: Callable[[Any], None] | None = None) -> bool:
    """Wait while a gateway stream (``byoc_testenv.gateway.GatewayStream``) plays: its first output segment
    within ``first_output_timeout``, then until its input is all sent and no output segment came for ``quiet``
    seconds (the last frames are back). Whether any output came; the stream keeps running until stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_output_timeout
    seen, changed = 0, loop.time()
    while stream.end is None:
        if stream.output_segments != seen:
            seen, changed = stream.output_segments, loop.time()
        if on_progress is not None:
            on_progress(stream)
        if not seen and loop.time() > deadline:
            return False
        if seen and stream.input_done and loop.time() - changed >= quiet:
            return True
        await asyncio.sleep(0.2)
    return seen > 0


def matched_frames(stream: Any, segments: list[bytes]) -> tuple[Any, Any] | None:
    """An input frame and the output frame with the same timestamp (``av.VideoFrame``s), from the middle of a
    gateway stream kept with ``keep_output=True``; None if none matched."""
    from byoc_testenv.devstream import cli, mpegts, pictures

    sent = {pts for segment in segments for pts in mpegts.frame_pts(segment)}
    both = sorted({pts for segment in stream.record.output for pts in mpegts.frame_pts(segment)} & sent)
    if not both:
        return None
    pts = cli.picture_pts(both, min(sent))
    before, after = pictures.decode_frame(segments, pts), pictures.decode_frame(stream.record.output, pts)
    return None if before is None or after is None else (before, after)


# -- a gateway's side of a stream by hand, through the test orchestrator's test-only routes ------------------


@dataclass
class OrchestratedStream:
    """A stream started through the orchestrator's ``/_test/byoc/stream/start`` (a gateway's signed start)."""

    stream_id: str
    status: int
    reply: str
    urls: dict[str, str] = field(default_factory=dict)  # publish, subscribe, control, events (X-*-Url)
    sent: Any = None  # channels.InputLog
    out: Any = None  # channels.OutputLog
    input_segments: list[bytes] = field(default_factory=list)

    @property
    def frames_out(self) -> int:
        return len(self.out.frame_published) if self.out is not None else 0

    @property
    def frames_in(self) -> int:
        return len(self.sent.frame_sent) if self.sent is not None else 0


async def start_stream(http: Any, orch_url: str, capability: str, stream_id: str | None = None,
                       params: dict[str, Any] | None = None, worker_timeout: float = 60.0) -> OrchestratedStream:
    """What a gateway's ``/ai/stream/start`` makes the orchestrator do: create the trickle channels and call the
    registered URL's ``/stream/start``. The orchestrator's answer: an empty 200 (the channels are in the
    headers), or the worker's (here: the router's) refusal, status and body."""
    import aiohttp

    sid = stream_id or f"demo-{uuid.uuid4().hex[:8]}"
    body = {"capability": capability, "stream_id": sid, "params": params or dict(PARAMS),
            "timeout_seconds": worker_timeout}
    async with http.post(f"{orch_url}/_test/byoc/stream/start", json=body,
                         timeout=aiohttp.ClientTimeout(total=worker_timeout + 10)) as resp:
        text = await resp.text()
        urls = {name: resp.headers[h] for name, h in (("publish", "X-Publish-Url"), ("subscribe", "X-Subscribe-Url"),
                                                       ("control", "X-Control-Url"), ("events", "X-Events-Url"))
                if h in resp.headers}
        return OrchestratedStream(sid, resp.status, text, urls)


async def stop_stream(http: Any, orch_url: str, stream_id: str) -> int:
    async with http.post(f"{orch_url}/_test/byoc/stream/stop", json={"stream_id": stream_id}) as resp:
        await resp.read()
        return int(resp.status)


async def play(http: Any, stream: OrchestratedStream, segments: list[bytes], *, first_output_timeout: float = 60.0,
               on_frames: Callable[[OrchestratedStream], None] | None = None) -> None:
    """Publish ``segments`` in real time on the stream's input channel and read the output back until it has
    caught up. The input channel stays open, so the stream keeps its worker slot until ``stop_stream``."""
    from byoc_testenv.devstream import channels, mpegts

    stream.sent, stream.out, stream.input_segments = channels.InputLog(), channels.OutputLog(), segments
    pieces = [mpegts.split_frames(s) for s in segments]
    reader = asyncio.create_task(channels.read_output(
        stream.urls["subscribe"], stream.out, keep=True, session=http,
        on_frames=(lambda _frames: on_frames(stream)) if on_frames else None))
    try:
        await asyncio.sleep(0.5)  # the worker's subscriber reaches the server before the first segment
        publishing = asyncio.create_task(
            channels.publish_paced(stream.urls["publish"], pieces, stream.sent, close=False, session=http))
        if not await channels.wait_output(stream.out, lambda: bool(stream.out.frame_published), first_output_timeout):
            publishing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publishing
        if stream.out.frame_published:
            await channels.wait_caught_up(stream.sent, stream.out, quiet=10.0)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def middle_pts(stream: OrchestratedStream) -> int | None:
    from byoc_testenv.devstream import cli, latency

    matched = [m.pts for m in latency.match_frames(stream.sent, stream.out)]
    return cli.picture_pts(matched, min(stream.sent.frame_sent)) if matched else None


def output_frame(stream: OrchestratedStream) -> Any:
    """A decoded output frame from the middle of the stream (an ``av.VideoFrame``), or None."""
    from byoc_testenv.devstream import pictures

    pts = middle_pts(stream)
    return None if pts is None else pictures.decode_frame(stream.out.segments, pts)


def grayness(frame: Any) -> float:
    """Mean absolute difference between colour channels (0 for a gray picture; colour bars give ~100)."""
    import numpy as np

    rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
    return float(np.mean(np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])) / 2)


# -- what the orchestrator shows -----------------------------------------------------------------------------


def capabilities(orch_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{orch_url}/_test/capabilities", timeout=10) as resp:
        return json.loads(resp.read())


def capability_table(orch_url: str) -> str:
    data = capabilities(orch_url)
    # Streams from the orchestrator's stream table: its per-capability load restarts at 0 on every
    # re-registration (as upstream's does), so it says little about what runs.
    rows = [("CAPABILITY", "URL", "CAPACITY", "PRICE", "STREAMS")]
    streams = data.get("streams") or {}
    for name, cap in sorted((data.get("capabilities") or {}).items()):
        price = f"{cap['price_per_unit']}/{cap['price_scaling']} {cap['currency'] or 'wei'}"
        running = sum(1 for s in streams.values() if s["capability"] == name)
        rows.append((name, cap["url"], str(cap["capacity"]), price, str(running)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def advertised(orch_url: str, capability: str) -> int | None:
    cap = (capabilities(orch_url).get("capabilities") or {}).get(capability)
    return cap["capacity"] if cap else None


def router_health(launcher: Any, url: str) -> dict[str, Any] | None:
    """The router's ``/health`` through its Service (name resolved with the launcher's hosts file)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    ips = launcher.resolve(parts.hostname or "")
    if not ips:
        return None
    try:
        with urllib.request.urlopen(f"http://{ips[0]}:{parts.port}/health", timeout=5) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def worker_streams(launcher: Any, namespace: str, port: int = 8000) -> dict[str, int]:
    """Running streams per launched worker pod ("ns/name"), as each runtime process on its pod IP counts them."""
    out = {}
    for key, entry in launcher.state()["pods"].items():
        if key.startswith(f"{namespace}/") and "worker" in entry["containers"] and not entry.get("terminating"):
            with urllib.request.urlopen(f"http://{entry['ip']}:{port}/health", timeout=5) as resp:
                out[key] = int(json.loads(resp.read())["active_streams"])
    return out


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """``polling.wait_for``, ending the demo with the reason instead of a traceback."""
    try:
        return wait_for(check, timeout, what, interval)
    except AssertionError as exc:
        raise SystemExit(str(exc)) from None


# -- the demo ------------------------------------------------------------------------------------------------


def secret_manifest(name: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"secret": base64.b64encode(secret.encode()).decode()}}


def worker_with_orchestrator(example: Path, orchestrator: dict[str, Any], processor: str | None) -> dict[str, Any]:
    """The example's BYOCWorker, naming the orchestrator (and the processor, for the bundled runtime)."""
    docs = [d for d in yaml.safe_load_all(example.read_text()) if d]
    worker = next(d for d in docs if d.get("kind") == "BYOCWorker")
    spec = worker.setdefault("spec", {})
    spec["orchestrators"] = [orchestrator]
    spec.setdefault("registration", {}).setdefault("refreshSeconds", 10)
    if processor and "container" not in spec:
        spec.setdefault("runtime", {})["processor"] = processor
    return worker


def say_table(title: str, text: str) -> None:
    print(f"\n$ {title}\n{text.rstrip()}\n", flush=True)


async def demo_stream(orch_url: str, capability: str, seconds: float, out_dir: Path, progress: Progress,
                      launcher: Any) -> bool:
    from byoc_testenv.devstream import pictures, sources
    from byoc_testenv.gateway import Gateway

    segments = await asyncio.to_thread(sources.generated_segments, PARAMS["width"], PARAMS["height"], seconds)
    last_print = [0.0]

    def show(stream: Any) -> None:
        if time.monotonic() - last_print[0] >= 1.0:
            last_print[0] = time.monotonic()
            print(f"  output segments {stream.output_segments:3d}   events {len(stream.events):3d}", flush=True)

    async with Gateway([orch_url]) as gateway:
        progress.say(f"starting a stream through the test gateway on capability {capability}")
        stream = await gateway.start_stream(capability, params=dict(PARAMS), input_segments=segments,
                                            keep_output=True)
        try:
            progress.say(f"publishing {seconds:g} s of test pattern ({PARAMS['width']}x{PARAMS['height']}) "
                         "in real time, reading the output back")
            await play_through(stream, on_progress=show)
            attempt = stream.attempts[-1] if stream.attempts else None
            if attempt is not None:
                progress.say(f"{attempt.orchestrator}/ai/stream/start -> HTTP {attempt.status}")
            print(f"  output segments {stream.output_segments:3d}   events {len(stream.events):3d}   (done)",
                  flush=True)
            busy = [pod for pod, n in (await asyncio.to_thread(worker_streams, launcher, "default")).items() if n]
            progress.say(f"the router placed the stream on pod {', '.join(busy) or '?'}")
            frames = await asyncio.to_thread(matched_frames, stream, segments)
            if frames is not None:
                before, after = frames
                progress.say(f"an output frame decoded: {after.width}x{after.height}, "
                             f"colour difference {grayness(after):.1f} (0 = gray)")
                png = out_dir / "side-by-side.png"
                await asyncio.to_thread(pictures.side_by_side, before, after, png)
                progress.say(f"input left, output right: {png}")
            say_table("orchestrator capabilities (stream running)", capability_table(orch_url))
        finally:
            reply = await stream.stop()
            end = stream.end
            progress.say(f"stopped: orchestrator answered {reply.status if reply else 'nothing'}; "
                         f"stream ended ({end.kind if end else '?'})")
    return stream.output_segments > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (for crds/ and examples/)")
    parser.add_argument("--example", type=Path, default=Path("examples/minimal.yaml"))
    parser.add_argument("--processor", default="grayscale", help="runtime processor for the example's worker")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of test pattern to stream")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="where the side-by-side PNG goes")
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    from byoc_testenv.launcher import DEFAULT_RUNTIME_IMAGE, Launcher, launcher_stages, runtime_images
    from byoc_testenv.orchestrator import OrchestratorProcess
    from byoc_testenv.trickle import TrickleServer

    progress = Progress()
    example = args.example if args.example.is_absolute() else args.repo / args.example
    images = runtime_images(DEFAULT_RUNTIME_IMAGE)
    ok = False
    progress.say("starting a local control plane with fake GPU nodes")
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(Cluster.start(progress=progress, extra_stages=launcher_stages(images)))
        print(cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product").stdout, flush=True)
        progress.say("installing the BYOCWorker CRD")
        cluster.kubectl("apply", "--server-side", "-f", str(args.repo / "crds"))
        cluster.wait_established("byocworkers.byoc.livepeer.org")

        progress.say("starting the launcher: runtime pods run as local processes on their pod IPs")
        launcher = stack.enter_context(Launcher.start(cluster, image_map=images))
        trickle = stack.enter_context(TrickleServer.start())
        orch = stack.enter_context(OrchestratorProcess.start(
            secret=DEMO_SECRET, trickle_base_url=trickle.base_url, hosts_file=launcher.hosts_file))
        progress.say(f"test orchestrator at {orch.url}, trickle server at {trickle.base_url}")
        log_path = Path(cluster.home or ".") / "operator.log"
        progress.say(f"starting the operator (log: {log_path})")
        stack.enter_context(operator_process(cluster, log_path, {"BYOC_RUNTIME_IMAGE": DEFAULT_RUNTIME_IMAGE}))

        cluster.apply(secret_manifest("orchestrator", DEMO_SECRET), namespace="default")
        worker = worker_with_orchestrator(example, orch.worker_ref("orchestrator"), args.processor)
        name = worker["metadata"]["name"]
        progress.say(f"applying {example} (processor {args.processor}, registered with the test orchestrator)")
        print(cluster.apply(worker, namespace="default").stdout, flush=True)
        progress.say(f"waiting for byocworker/{name} to be Ready (its pods answer their probes) and Registered")
        cluster.wait_for(f"byocworker/{name}", "condition=Ready", namespace="default", timeout=240)
        cluster.wait_for(f"byocworker/{name}", "condition=Registered", namespace="default", timeout=120)
        obj = cluster.get("byocworker", name, namespace="default")
        capability = obj["spec"].get("capability", {}).get("name", "live-video-to-video")
        capacity = int(obj["status"].get("capacity", 0))
        wait_until(lambda: advertised(orch.url, capability) == capacity, 60, "the capacity advertised")
        url = capabilities(orch.url)["capabilities"][capability]["url"]
        wait_until(lambda: (h := router_health(launcher, url)) and h.get("pods", 0) >= obj["spec"].get("replicas", 1),
                   60, "the router to know every worker pod")

        say_table("kubectl get byocworkers -o wide", cluster.kubectl("get", "byocworkers", "-o", "wide").stdout)
        say_table("kubectl get pods,services -o wide", cluster.kubectl("get", "pods,services", "-o", "wide").stdout)
        say_table("orchestrator capabilities", capability_table(orch.url))
        for pod, entry in sorted(launcher.state()["pods"].items()):
            for cname, c in entry["containers"].items():
                print(f"  {pod:<45} {cname:<7} pid {c['pid']}  {entry['ip']}  log {c['log']}", flush=True)

        args.out.mkdir(parents=True, exist_ok=True)
        ok = asyncio.run(demo_stream(orch.url, capability, args.seconds, args.out, progress, launcher))
        progress.say("the stream went through" if ok else "no output came back")
        if args.keep:
            print(f"\nexport KUBECONFIG={cluster.kubeconfig}\n"
                  f"orchestrator {orch.url}  (GET /_test/capabilities; POST /ai/stream/start)\n"
                  f"trickle {trickle.base_url}   hosts file {launcher.hosts_file}   pod logs {launcher.root}/pods\n"
                  "Running; Ctrl-C stops everything.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while launcher.running:
                    time.sleep(1)
        progress.say("stopping everything")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

