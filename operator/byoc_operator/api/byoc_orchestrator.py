"""The BYOCOrchestrator resource: an orchestrator the cluster administrator offers to namespaces."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from byoc_operator.api.registration import ONE_WAY_OF_TRUST, allow_plaintext_field
from byoc_operator.api.schema import (
    GROUP,
    HTTPS_FOR_SECRETS,
    ORCHESTRATOR_KIND,
    VERSION,
    BaseURL,
    Model,
    Origin,
    channel_origins_field,
    checked,
    url_field,
)


class OperatorSecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253, description="Secret in the operator's namespace.")
    key: str = Field(default="secret", min_length=1, max_length=253, description="Key in the Secret.")


class OrchestratorTrust(Model):
    """How the operator verifies a BYOCOrchestrator's certificate; for its calls to that orchestrator only."""

    model_config = checked(ONE_WAY_OF_TRUST)

    ca_bundle_secret_ref: OperatorSecretKeyRef | None = Field(
        default=None, description="Secret key (operator's namespace) holding PEM CA certificates to verify it with."
    )
    insecure_skip_verify: bool = Field(default=False, description="Do not verify the orchestrator's certificate.")
    allow_plaintext: bool = allow_plaintext_field()


class NamespaceSelector(Model):
    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels a namespace must carry to use it; {} offers it to every namespace."
    )


class BYOCOrchestratorSpec(Model):
    model_config = checked(HTTPS_FOR_SECRETS)

    url: BaseURL = url_field("Orchestrator base URL, e.g. 'https://orch-0.example:8935'.")
    cli_url: BaseURL | None = url_field(
        "Live Runner static mode: the orchestrator's CLI URL (-cliAddr), where runners are upserted. It must not be "
        "reachable by anything a tenant steers: only set it here, never in a BYOCWorker.",
        None,
    )
    secret_ref: OperatorSecretKeyRef | None = Field(
        default=None,
        description="Secret in the operator's namespace holding the orchestrator secret (-orchSecret). It is only "
        "ever sent to url. Required by BYOC workers; Live Runner static upserts carry no secret.",
    )
    tls: OrchestratorTrust | None = Field(default=None, description="How to trust the orchestrator's certificate.")
    channel_origins: list[Origin] = channel_origins_field()
    namespace_selector: NamespaceSelector = Field(
        description="Namespaces whose BYOCWorkers may register with it ({} : every namespace)."
    )


class BYOCOrchestrator(Model):
    """An orchestrator the cluster administrator offers to BYOCWorkers of the namespaces it selects."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = ORCHESTRATOR_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BYOCOrchestratorSpec

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
