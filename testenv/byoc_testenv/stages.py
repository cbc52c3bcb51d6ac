"""kwok Stages: how fake nodes and pods move through their lifecycle.

The default lifecycle makes nodes Ready and pods Running/Ready (Job pods then
Succeeded; deleted pods go away). A pod can ask for a failure instead, so the
operator's tests see the status a kubelet would report:

    metadata.annotations["byoc-testenv/simulate"] =
        "image-pull-error"  -> Pending, container waiting ImagePullBackOff, not Ready
        "crash-loop"        -> Running, container waiting CrashLoopBackOff, restartCount > 0
                               (and growing), lastState terminated exitCode 1, not Ready
        "not-ready"         -> Running, container running but not ready, not Ready

kwokctl uses these instead of its built-in stages (it uses either its own or
the ones given, never both), so node stages are here too.
"""

from __future__ import annotations

from typing import Any

SIMULATE_ANNOTATION = "byoc-testenv/simulate"
IMAGE_PULL_ERROR = "image-pull-error"
CRASH_LOOP = "crash-loop"
NOT_READY = "not-ready"
SIMULATIONS = (IMAGE_PULL_ERROR, CRASH_LOOP, NOT_READY)

# How often a crash-looping container "restarts" again (restartCount + 1).
CRASH_LOOP_RESTART_SECONDS = 20

_SIMULATE_KEY = f'.metadata.annotations["{SIMULATE_ANNOTATION}"]'
_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
# kwok sets startTime the first time it handles a pod; before that the pod is new to it.
_UNSTARTED = {"key": ".status.startTime", "operator": "DoesNotExist"}
_READY_STATUS = '.status.conditions.[] | select( .type == "Ready" ) | .status'


def _stage(name: str, kind: str, match: list[dict[str, Any]], next_: dict[str, Any],
           delay_ms: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": kind},
        "selector": {"matchExpressions": match},
        "next": next_,
    }
    if delay_ms is not None:
        spec["delay"] = {"durationMilliseconds": delay_ms, "jitterDurationMilliseconds": delay_ms + delay_ms // 10}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


# --- nodes -----------------------------------------------------------------

_NODE_CONDITIONS = """\
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with .status.addresses }}
{{ YAML . 1 }}
{{ else }}
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
"""

# Keeps the capacity the node was created with (nodes.render_node sets it).
_NODE_INITIALIZE = _NODE_CONDITIONS + """\
allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 256Gi
  pods: "110"
{{ end }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 256Gi
  pods: "110"
{{ end }}
{{ $info := or .status.nodeInfo dict }}
nodeInfo:
  architecture: {{ or $info.architecture "amd64" | Quote }}
  operatingSystem: {{ or $info.operatingSystem "linux" | Quote }}
  kubeletVersion: {{ or $info.kubeletVersion "kwok" | Quote }}
  kubeProxyVersion: {{ or $info.kubeProxyVersion "kwok" | Quote }}
  containerRuntimeVersion: {{ or $info.containerRuntimeVersion "kwok" | Quote }}
  kernelVersion: {{ or $info.kernelVersion "kwok" | Quote }}
  osImage: {{ or $info.osImage "kwok" | Quote }}
  bootID: ""
  machineID: ""
  systemUUID: ""
phase: Running
"""


def node_stages(heartbeat_seconds: int = 600) -> list[dict[str, Any]]:
    """Nodes become Ready at once; with node leases (kwokctl's default) the status heartbeat can be slow."""
    return [
        _stage("node-initialize", "Node",
               [{"key": _READY_STATUS, "operator": "NotIn", "values": ["True"]}],
               {"statusTemplate": _NODE_INITIALIZE}),
        _stage("node-heartbeat", "Node",
               [{"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": _READY_STATUS, "operator": "In", "values": ["True"]}],
               {"statusTemplate": _NODE_CONDITIONS}, delay_ms=heartbeat_seconds * 1000),
    ]


# --- pods ------------------------------------------------------------------

_POD_IPS = """\
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
startTime: {{ Now | Quote }}
"""

_INIT_DONE = """\
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  imageID: {{ printf "%s@sha256:0" .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq ( or .restartPolicy "" ) "Always" }}
  started: true
  state:
    running:
      startedAt: {{ Now | Quote }}
  {{ else }}
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ Now | Quote }}
      finishedAt: {{ Now | Quote }}
  {{ end }}
{{ end }}
"""


def _conditions(ready: bool, not_ready_reason: str = "ContainersNotReady") -> str:
    """Pod conditions; when not ready, with the reason and message the kubelet writes."""
    if ready:
        status = '"True"'
        extra = ""
    else:
        status = '"False"'
        extra = (f"  reason: {not_ready_reason}\n"
                 '  message: "containers with unready status: [{{ range $i, $c := .spec.containers }}'
                 '{{ if $i }} {{ end }}{{ $c.name }}{{ end }}]"\n')
    out = "conditions:\n"
    out += "- type: PodReadyToStartContainers\n  status: \"True\"\n  lastTransitionTime: {{ Now | Quote }}\n"
    out += "- type: Initialized\n  status: \"True\"\n  lastTransitionTime: {{ Now | Quote }}\n"
    for cond in ("Ready", "ContainersReady"):
        out += f"- type: {cond}\n  status: {status}\n  lastTransitionTime: {{{{ Now | Quote }}}}\n{extra}"
    if ready:
        out += ("{{ range .spec.readinessGates }}\n- type: {{ .conditionType | Quote }}\n  status: \"True\"\n"
                "  lastTransitionTime: {{ Now | Quote }}\n{{ end }}\n")
    return out


def _containers(body: str) -> str:
    return ("containerStatuses:\n{{ range .spec.containers }}\n- image: {{ .image | Quote }}\n"
            "  name: {{ .name | Quote }}\n" + body + "{{ end }}\n")


_RUNNING = """\
  imageID: {{ printf "%s@sha256:0" .image | Quote }}
  containerID: {{ printf "kwok://%s" .name | Quote }}
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ Now | Quote }}
"""

POD_READY = _conditions(True) + _containers("  ready: true\n" + _RUNNING) + _INIT_DONE + _POD_IPS + "phase: Running\n"

POD_NOT_READY = (_conditions(False) + _containers("  ready: false\n" + _RUNNING) + _INIT_DONE + _POD_IPS
                 + "phase: Running\n")

POD_IMAGE_PULL_ERROR = _conditions(False) + _containers("""\
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ImagePullBackOff
      message: {{ printf "Back-off pulling image \\"%s\\": ErrImagePull: failed to pull and unpack image \\"%s\\": \
not found (simulated by byoc-testenv)" .image .image | Quote }}
""") + _INIT_DONE + _POD_IPS + "phase: Pending\n"

_CRASH_STATE = """\
  ready: false
  started: false
  imageID: {{ printf "%s@sha256:0" .image | Quote }}
  containerID: {{ printf "kwok://%s" .name | Quote }}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {{ printf "back-off 5m0s restarting failed container=%s pod=%s_%s(%s)" \
.name $pod.metadata.name $pod.metadata.namespace $pod.metadata.uid | Quote }}
  lastState:
    terminated:
      exitCode: 1
      reason: Error
      message: "simulated crash (byoc-testenv)"
      startedAt: {{ Now | Quote }}
      finishedAt: {{ Now | Quote }}
"""

POD_CRASH_LOOP = "{{ $pod := . }}\n" + _conditions(False) + _containers(
    "  restartCount: 3\n" + _CRASH_STATE) + _INIT_DONE + _POD_IPS + "phase: Running\n"

# Later "restarts": each container's restartCount + 1 and a fresh lastState, as a kubelet in back-off
# would report. kwok replaces the whole list, so every field is written again.
POD_CRASH_LOOP_RESTART = """\
{{ $pod := . }}
containerStatuses:
{{ range .status.containerStatuses }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  restartCount: {{ add1 ( or .restartCount 0 ) }}
""" + _CRASH_STATE + "{{ end }}\n"

POD_SUCCEEDED = """\
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ Now | Quote }}
      finishedAt: {{ Now | Quote }}
{{ end }}
conditions:
- type: Ready
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ Now | Quote }}
- type: ContainersReady
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ Now | Quote }}
phase: Succeeded
"""


def _simulate(value: str) -> dict[str, Any]:
    return {"key": _SIMULATE_KEY, "operator": "In", "values": [value]}


def pod_stages() -> list[dict[str, Any]]:
    no_simulation = {"key": _SIMULATE_KEY, "operator": "DoesNotExist"}
    return [
        _stage("pod-ready", "Pod",
               [_NOT_DELETED, no_simulation,
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                {"key": _READY_STATUS, "operator": "NotIn", "values": ["True"]}],
               {"statusTemplate": POD_READY}),
        # Pods of Jobs run to completion, so Jobs (and helm hooks) finish.
        _stage("pod-complete", "Pod",
               [_NOT_DELETED, no_simulation,
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]}],
               {"statusTemplate": POD_SUCCEEDED}),
        # No kubelet confirms termination, so a deleting pod is removed at once.
        _stage("pod-delete", "Pod",
               [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
               {"delete": True}),
        _stage(f"pod-simulate-{IMAGE_PULL_ERROR}", "Pod",
               [_NOT_DELETED, _simulate(IMAGE_PULL_ERROR), _UNSTARTED],
               {"statusTemplate": POD_IMAGE_PULL_ERROR}),
        _stage(f"pod-simulate-{CRASH_LOOP}", "Pod",
               [_NOT_DELETED, _simulate(CRASH_LOOP), _UNSTARTED],
               {"statusTemplate": POD_CRASH_LOOP}),
        _stage(f"pod-simulate-{CRASH_LOOP}-restart", "Pod",
               [_NOT_DELETED, _simulate(CRASH_LOOP), {"key": ".status.startTime", "operator": "Exists"}],
               {"statusTemplate": POD_CRASH_LOOP_RESTART}, delay_ms=CRASH_LOOP_RESTART_SECONDS * 1000),
        _stage(f"pod-simulate-{NOT_READY}", "Pod",
               [_NOT_DELETED, _simulate(NOT_READY), _UNSTARTED],
               {"statusTemplate": POD_NOT_READY}),
    ]


def default_stages() -> list[dict[str, Any]]:
    return node_stages() + pod_stages()
