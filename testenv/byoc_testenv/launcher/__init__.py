"""Pods of a local kwok cluster as real local processes: a kubelet, kube-proxy and cluster DNS for tests.

kwok's nodes are fake, so nothing runs the pods the scheduler places on them. The launcher watches Pods and
Services and, on this machine:

- runs every container whose image the image map knows (``images.py``) as a process bound to its pod's IP
  (127.64.x.y), with the pod's command, env (downward API included), probes, restarts, preStop hooks and grace
  period (``pods.py``, ``probes.py``, ``env.py``, ``hooks.py``), and reports readiness in the pod's status
  (``stages.py`` keeps kwok from reporting it first);
- listens on each ClusterIP:port (127.96.x.y, the cluster's ``service_cidr``) and forwards to ready endpoints,
  computed from Pods since the API server refuses loopback EndpointSlices (``proxy.py``, ``services.py``);
- keeps a hosts file of Service names and, for headless Services, files of ready pod addresses that stand
  in for their DNS A records (``dns.py``; ``HostsFileResolver`` lets aiohttp clients use it).

Deletion: kwok removes a deleted pod from the API at once (standing in for a kubelet that confirmed it), so its
endpoints and DNS records go at once, while the launcher stops its processes as a kubelet would: preStop hooks,
SIGTERM, SIGKILL at the end of the pod's grace period. kwok may hand the freed IP to the next pod straight away;
that pod waits until the old processes are gone (a kubelet keeps the IP until the old sandbox is torn down).

The one liberty: without network namespaces, a process learns the address to bind from an environment
variable (``BYOC_HOST`` for byoc-runtime, ``BYOC_ROUTER_HOST`` for byoc-router, ``BYOC_REGISTRAR_HOST`` for
byoc-registrar), and a ``--pods-dns NAME`` flag becomes ``--pods-file FILE``.

    Launcher.start(cluster, image_map=runtime_images(IMAGE))      # a process (process.py), context manager
    python -m byoc_testenv.launcher --kubeconfig K --image IMAGE   # the same from a shell
"""

from .controller import LauncherController
from .dns import HostsFileResolver, read_hosts, resolve_hosts
from .images import (
    DEFAULT_EDGE_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    ImageMap,
    LocalImage,
    bundled_edge,
    bundled_runtime,
    runtime_images,
)
from .process import Launcher, LauncherError
from .stages import launcher_stages

__all__ = [
    "DEFAULT_EDGE_IMAGE",
    "DEFAULT_RUNTIME_IMAGE",
    "HostsFileResolver",
    "ImageMap",
    "Launcher",
    "LauncherController",
    "LauncherError",
    "LocalImage",
    "bundled_edge",
    "bundled_runtime",
    "launcher_stages",
    "read_hosts",
    "resolve_hosts",
    "runtime_images",
]
