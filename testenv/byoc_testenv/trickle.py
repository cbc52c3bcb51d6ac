"""A local trickle server for tests, benchmarks and the dev flow.

The server is the small Go program in ``go/trickle/`` beside this file; it speaks the same HTTP
contract as go-livepeer's ``trickle/trickle_server.go`` (which cannot be built here). It is built
once with the local Go toolchain and cached outside the repo in
``${BYOC_TESTENV_CACHE:-~/.cache/byoc-testenv}/trickle-<hash of the Go sources>/trickle-server``.

    with TrickleServer.start() as server:
        url = server.create_channel("stream1")   # what the orchestrator does before starting a worker
        ...                                        # publish/subscribe on url
    # or, in pytest: the session-scoped ``trickle_server`` fixture (trickle_plugin.py)

Like upstream orchestrators, channels are not created by a POST unless ``autocreate=True``;
``create_channel`` (PUT on the channel, a testenv-only route) stands in for the orchestrator's
in-process channel creation.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from byoc_testenv.polling import read_first_line, stop_child

__all__ = [
    "GO_SOURCE_DIR",
    "TrickleServer",
    "TrickleServerError",
    "build_trickle_server",
    "find_go",
]

GO_SOURCE_DIR = Path(__file__).resolve().parent / "go" / "trickle"
BINARY_NAME = "trickle-server"
DEFAULT_BASE_PATH = "/ai/trickle/"


class TrickleServerError(RuntimeError):
    """The trickle server could not be built or started."""


def _cache_root() -> Path:
    env = os.environ.get("BYOC_TESTENV_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "byoc-testenv"


def _source_files() -> list[Path]:
    # Tests are left out of the hash: editing them needs no rebuild.
    files = [p for p in GO_SOURCE_DIR.iterdir() if p.suffix == ".go" and not p.name.endswith("_test.go")]
    files += [GO_SOURCE_DIR / "go.mod"]
    return sorted(files)


def source_hash() -> str:
    h = hashlib.sha256()
    for path in _source_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def find_go() -> str | None:
    """The go binary: $BYOC_TESTENV_GO, then PATH, then the usual install location."""
    env = os.environ.get("BYOC_TESTENV_GO")
    if env:
        return env
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def build_trickle_server(force: bool = False) -> Path:
    """Return the cached server binary, building it first if needed.

    A file lock keeps parallel test processes from building at the same time, and the binary is
    renamed into place only when complete, so a cache never holds half a binary.
    """
    out_dir = _cache_root() / f"trickle-{source_hash()}"
    binary = out_dir / BINARY_NAME
    if binary.exists() and not force:
        return binary
    go = find_go()
    if go is None or not Path(go).exists():
        found = f" ({go} does not exist)" if go else ""
        raise TrickleServerError(f"the Go toolchain is needed to build the trickle server{found} (set BYOC_TESTENV_GO)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and not force:
            return binary
        tmp = out_dir / f".{BINARY_NAME}.{os.getpid()}.tmp"
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOPROXY="off")
        proc = subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), "."],
            cwd=GO_SOURCE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise TrickleServerError(f"go build of the trickle server failed:\n{proc.stdout}{proc.stderr}")
        os.replace(tmp, binary)
    return binary


def _fmt_duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


class TrickleServer:
    """A running trickle server process. Create it with :meth:`start`."""

    def __init__(self, args: list[str], host: str, port: int, base_path: str, log_path: Path) -> None:
        self._args = args  # every flag except -addr
        self.host = host
        self.port = port
        self.base_path = base_path
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base_path: str = DEFAULT_BASE_PATH,
        autocreate: bool = False,
        channels: Iterable[str] = (),
        idle_timeout: float = 300.0,
        sweep_interval: float | None = None,
        first_byte_timeout: float = 10.0,
        verbose: bool = False,
        startup_timeout: float = 30.0,
    ) -> TrickleServer:
        """Build (if needed) and start a server; port 0 picks a free port.

        ``channels`` are created at startup, as an orchestrator would before starting a worker
        (``name`` or ``name=mime/type``). ``autocreate`` makes the first POST create a channel
        (off on go-livepeer orchestrators).
        """
        if not base_path.startswith("/"):
            base_path = "/" + base_path
        if not base_path.endswith("/"):
            base_path += "/"
        args = [
            f"-base-path={base_path}",
            f"-autocreate={'true' if autocreate else 'false'}",
            f"-idle-timeout={_fmt_duration(idle_timeout)}",
            f"-first-byte-timeout={_fmt_duration(first_byte_timeout)}",
            "-exit-on-stdin-eof",
        ]
        if sweep_interval is not None:
            args.append(f"-sweep-interval={_fmt_duration(sweep_interval)}")
        if verbose:
            args.append("-v")
        args += [f"-channel={c}" for c in channels]
        fd, log_name = tempfile.mkstemp(prefix="trickle-server-", suffix=".log")
        os.close(fd)
        server = cls(args, host, port, base_path, Path(log_name))
        server._spawn(startup_timeout)
        return server

    # -- addresses -----------------------------------------------------------------------------

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port/ai/trickle/``: channel URLs are ``base_url + name``."""
        return f"http://{self.host}:{self.port}{self.base_path}"

    def url(self, channel: str) -> str:
        return self.base_url + channel

    # -- channels ------------------------------------------------------------------------------

    def create_channel(self, name: str, mime_type: str = "video/mp2t") -> str:
        """Create a channel the way an orchestrator does before handing its URL out; returns the URL."""
        self._request("PUT", self.url(name), {"Expect-Content": mime_type})
        return self.url(name)

    def delete_channel(self, name: str) -> bool:
        """DELETE the channel; False if it did not exist."""
        return self._request("DELETE", self.url(name), {}) == 200

    def _request(self, method: str, url: str, headers: dict[str, str]) -> int:
        req = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            if method == "DELETE" and e.code in (400, 404):
                return e.code
            raise

    # -- process -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, startup_timeout: float) -> None:
        binary = build_trickle_server()
        cmd = [str(binary), f"-addr={self.host}:{self.port}", *self._args]
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        text = read_first_line(proc, startup_timeout)
        if "addr=" not in text:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            raise TrickleServerError(f"trickle server did not start ({' '.join(cmd)}):\n{text}{self.read_log()}")
        addr = text.split("addr=", 1)[1].split()[0]
        host, _, port = addr.rpartition(":")
        self.host, self.port = host, int(port)
        self._proc = proc

    def read_log(self) -> str:
        """The server's stderr so far (warnings; every request with verbose=True)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0, kill: bool = False) -> None:
        """Stop the server: SIGTERM (closes every channel first) or SIGKILL with ``kill=True``.

        The log file is removed unless $BYOC_TESTENV_KEEP_LOGS is set.
        """
        self._stop_process(timeout, kill)
        if not os.environ.get("BYOC_TESTENV_KEEP_LOGS"):
            self.log_path.unlink(missing_ok=True)

    def _stop_process(self, timeout: float = 5.0, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_child(proc, timeout, signal.SIGKILL if kill else signal.SIGTERM)

    def restart(self, startup_timeout: float = 30.0, kill: bool = False) -> None:
        """Stop and start again on the same port (all channels are lost, except -channel ones)."""
        self._stop_process(kill=kill)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                self._spawn(max(deadline - time.monotonic(), 1.0))
                return
            except TrickleServerError:
                # The port can take a moment to be free again.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def __enter__(self) -> TrickleServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"TrickleServer({self.base_url!r}, running={self.running})"
