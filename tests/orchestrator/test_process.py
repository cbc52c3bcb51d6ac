"""The test orchestrator as a process (``python -m byoc_testenv.orchestrator``), as end-to-end tests run it."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from byoc_testenv.orchestrator import OrchestratorProcess


def post(url: str, body: bytes, auth: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_process_with_tls_and_secret_file():
    with OrchestratorProcess.start(secret="from-file", tls=True) as orch:
        assert orch.url.startswith("https://127.0.0.1:") and orch.ca_file is not None
        trusted = ssl.create_default_context(cafile=str(orch.ca_file))
        body = json.dumps({"name": "c", "url": "http://w:1", "capacity": 1}).encode()
        assert post(orch.url + "/capability/register", body, "from-file", trusted) == (200, "ok")
        assert post(orch.url + "/capability/register", body, "other", trusted)[0] == 400
        with pytest.raises(urllib.error.URLError):
            post(orch.url + "/capability/register", body, "from-file")  # the default trust store refuses it
        proc = orch.proc
    assert proc.poll() is not None  # stopped with the block
