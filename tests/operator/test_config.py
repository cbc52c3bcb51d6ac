"""The operator's settings: read once from the environment, validated, and a bad one stops it at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from byoc_operator.config import DEFAULT_EDGE_IMAGE, DEFAULT_RUNTIME_IMAGE, ConfigError, OperatorConfig
from byoc_operator.pod_policy import PodPolicy


def test_unset_settings_are_the_defaults_the_chart_documents() -> None:
    config = OperatorConfig.from_env({})
    assert (config.runtime_image, config.edge_image) == (DEFAULT_RUNTIME_IMAGE, DEFAULT_EDGE_IMAGE)
    assert (config.resync_seconds, config.reconcile_concurrency, config.watch_timeout_seconds) == (600, 32, 300)
    assert config.operator_namespace is None and not config.allow_namespace_orchestrators
    assert config.policy == PodPolicy()


def test_every_variable_reaches_its_setting() -> None:
    config = OperatorConfig.from_env(
        {
            "BYOC_RUNTIME_IMAGE": "registry.local/byoc-runtime:2",
            "BYOC_RESYNC_SECONDS": "2",
            "BYOC_RECONCILE_CONCURRENCY": "4",
            "BYOC_WATCH_TIMEOUT": "60",
            "BYOC_TOKEN_PROPAGATION_SECONDS": "0",
            "BYOC_OPERATOR_NAMESPACE": "byoc-system",
            "BYOC_OPERATOR_INSTANCE": "prod",
            "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS": "true",
            "BYOC_ALLOW_ROOT": "TRUE",
            "BYOC_ALLOWED_CAPABILITIES": "sys_ptrace, NET_ADMIN,",
            "BYOC_DEFAULT_MEMORY_LIMIT": "",
        }
    )
    # The edge image (routers, sidecars) is set on its own: the runtime image does not change it.
    assert (config.runtime_image, config.edge_image) == ("registry.local/byoc-runtime:2", DEFAULT_EDGE_IMAGE)
    assert OperatorConfig.from_env({"BYOC_EDGE_IMAGE": "registry.local/byoc-edge:1"}).edge_image == (
        "registry.local/byoc-edge:1"
    )
    assert (config.resync_seconds, config.reconcile_concurrency, config.watch_timeout_seconds) == (2, 4, 60)
    assert config.token_propagation_seconds == 0
    assert config.operator_namespace == "byoc-system" and config.allow_namespace_orchestrators
    assert config.policy == PodPolicy(
        allow_root=True,
        allowed_capabilities=frozenset({"SYS_PTRACE", "NET_ADMIN"}),
        default_memory_limit="",  # '' is meaningful here: no default limit
        operator_namespace="byoc-system",
        operator_instance="prod",
    )


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("BYOC_RESYNC_SECONDS", "soon", "valid number"),
        ("BYOC_RESYNC_SECONDS", "0", "greater than 0"),
        ("BYOC_RECONCILE_CONCURRENCY", "0", "greater than or equal to 1"),
        ("BYOC_WATCH_TIMEOUT", "1.5", "valid integer"),
        ("BYOC_ALLOW_ROOT", "maybe", "valid boolean"),
        ("BYOC_ALLOW_NAMESPACE_ORCHESTRATORS", "yes please", "valid boolean"),
        ("BYOC_RUNTIME_IMAGE", "Registry/Image Name", "not an image reference"),
        ("BYOC_EDGE_IMAGE", "registry.local/Edge:1", "not an image reference"),
        ("BYOC_DEFAULT_MEMORY_LIMIT", "a lot", "not a memory quantity"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable_and_the_value(variable: str, value: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env({variable: value})
    message = str(caught.value)
    assert f"{variable}={value!r}" in message and why in message, message


def test_the_operator_does_not_start_with_a_bad_setting() -> None:
    env = {**os.environ, "BYOC_RECONCILE_CONCURRENCY": "many", "KUBECONFIG": os.devnull}
    result = subprocess.run(
        [sys.executable, "-m", "byoc_operator.main", "--metrics-port", "0", "--liveness", ""],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "invalid operator settings: BYOC_RECONCILE_CONCURRENCY='many'" in result.stderr
