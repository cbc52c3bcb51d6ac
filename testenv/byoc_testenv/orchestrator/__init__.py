"""A test stand-in for a go-livepeer orchestrator: BYOC capabilities and Live Runners, over real HTTP.

    async with TestOrchestrator.start(secret="s", trickle_base_url=trickle.base_url) as orch: ...  # in-process
    with OrchestratorProcess.start(secret="s") as orch: ...                                       # subprocess
    python -m byoc_testenv.orchestrator --port 0 --secret-file secret.txt                         # CLI

Routes (each module names the upstream function it follows):
  BYOC         POST /capability/register, POST /capability/unregister, GET /process/token,
               POST /ai/stream/start|update|stop (signed ``Livepeer`` job header, as a gateway sends them)
  CLI port     POST /registerLiveRunners (no auth; --live-runner-config registers a runners.json at start)
  Live Runner  POST /runners/heartbeat, POST /runners/{id}/unregister, GET /discovery,
               POST /apps/{route}/session, POST /apps/{route}/session/{sid}/stop, /apps/{route}/session/{sid}/app/...,
               /apps/{route}/app/..., POST|DELETE /runner/{route}/session/{sid}/channels,
               POST /runner/{route}/session/{sid}/stop
  test-only    GET /_test/capabilities, GET /_test/live-runners,
               POST /_test/byoc/stream/start|stop|params (a gateway's stream calls, unsigned),
               POST /_test/byoc/stream/remove (the orchestrator drops a stream without calling the worker)
"""

from .capabilities import Capability, CapabilityTable
from .live_runners import LiveRunnerRegistry, go_duration
from .process import OrchestratorProcess, fleet_secret_data, orchestrator_spec
from .server import TestOrchestrator

__all__ = [
    "Capability",
    "CapabilityTable",
    "LiveRunnerRegistry",
    "OrchestratorProcess",
    "TestOrchestrator",
    "fleet_secret_data",
    "go_duration",
    "orchestrator_spec",
]
