"""``byoc-dev-stream`` end to end: our trickle server, ``byoc-runtime --processor grayscale``, a few seconds of the
generated test pattern, and what the developer gets back (report, exit code, side-by-side PNG)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest
from byoc_testenv.devstream import cli

pytestmark = pytest.mark.trickle


@pytest.fixture(scope="module")
def grayscale_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    out = tmp_path_factory.mktemp("devstream")
    code = cli.main(["--processor", "grayscale", "--generate", "--seconds", "3", "--out", str(out)])
    return code, out, (out / "report.json").read_text()


def read_png(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_frames_come_out_and_exit_zero(grayscale_run: tuple[int, Path, str]) -> None:
    code, _, text = grayscale_run
    report = json.loads(text)
    assert code == 0, report
    assert report["frames_in"] == 90
    assert report["frames_out"] > 0
    assert report["latency_p50_ms"] is not None and report["latency_p50_ms"] > 0
    assert report["start_status"] == 200 and report["stop_status"] == 200
    assert "heartbeat" in report["events"] and "stream_stopped" in report["events"]


def test_side_by_side_png_has_gray_output(grayscale_run: tuple[int, Path, str]) -> None:
    _, out, _ = grayscale_run
    image = read_png(out / "side-by-side.png").astype(int)
    assert image.shape == (512, 1024, 3)
    left, right = image[:, :512], image[:, 512:]
    # The input is colour bars; the output is the same picture in grey (R = G = B up to codec rounding).
    assert np.abs(left[..., 0] - left[..., 2]).max() > 100
    assert np.abs(right[..., 0] - right[..., 1]).max() <= 8
    assert np.abs(right[..., 1] - right[..., 2]).max() <= 8
    assert right.std() > 20  # grey bars, not a blank frame


class _SilentWorker(BaseHTTPRequestHandler):
    """Answers the worker REST contract but never publishes anything."""

    def _reply(self, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply({"status": "IDLE"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply({"status": "success"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def silent_worker() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentWorker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_output_is_an_error(silent_worker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--worker-url", silent_worker, "--seconds", "2", "--first-output-timeout", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert "no output frames arrived" in capsys.readouterr().err
