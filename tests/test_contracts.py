"""Facts that two deployables must agree on without importing each other."""

from __future__ import annotations

from byoc_operator import api
from byoc_operator.render import Worker, render_deployment
from byoc_runtime.config import load_config
from byoc_runtime.processors.loader import BUILTIN_PROCESSORS


def test_operator_offers_exactly_the_runtimes_builtin_processors() -> None:
    assert sorted(api.BUILTIN_PROCESSORS) == sorted(BUILTIN_PROCESSORS)


def test_runtime_reads_the_environment_the_operator_renders(monkeypatch) -> None:
    worker = Worker.from_body(
        {
            "metadata": {"name": "w", "namespace": "n"},
            "spec": {"runtime": {"processor": "grayscale", "params": {"a": 1}}, "sessionsPerPod": 3},
        },
        "img",
    )
    env = render_deployment(worker)["spec"]["template"]["spec"]["containers"][0]["env"]
    for var in env:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    config = load_config([])
    assert (config.processor, config.capacity, config.params, config.port) == ("grayscale", 3, {"a": 1}, 8000)
