"""What rendering needs to know about one BYOCWorker, and the names and labels of its children."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from byoc_operator import api
from byoc_operator.pod_policy import PodPolicy

LABEL_WORKER = f"{api.GROUP}/worker"
LABEL_CAPABILITY = f"{api.GROUP}/capability"
LABEL_COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "byoc-operator"
FIELD_MANAGER = "byoc-operator"
ROUTER_PORT = 8080
GENERATED_TOKEN_KEY = "token"


@dataclass(frozen=True)
class Worker:
    """A parsed BYOCWorker plus the operator-wide defaults that rendering depends on."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: api.BYOCWorkerSpec
    runtime_image: str
    # The torch-free image (Dockerfile.edge) that routers and registrar/drain sidecars run.
    edge_image: str = ""
    policy: PodPolicy = field(default_factory=PodPolicy)
    # Whether spec.registration.tokenSecretRef is the operator's generated Secret (the spec named none).
    generates_token: bool = False

    @classmethod
    def from_body(
        cls, body: dict[str, Any], runtime_image: str, policy: PodPolicy | None = None, edge_image: str = ""
    ) -> Worker:
        """Parse an object as the API server returns it; raises pydantic.ValidationError on a bad spec.

        A routed worker whose spec names no token gets the generated one (`render/token.py`) as its
        tokenSecretRef, so everything that reads the token (the pods' mounts, registration) reads it alike.
        Without an edge image, routers and sidecars run the runtime image (which holds the edge commands too)."""
        meta = body["metadata"]
        spec = api.BYOCWorkerSpec.model_validate(body.get("spec") or {})
        worker = cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
            spec=spec,
            runtime_image=runtime_image,
            edge_image=edge_image or runtime_image,
            policy=policy or PodPolicy(),
        )
        if not worker.uses_router or spec.registration.token_secret_ref is not None:
            return worker
        generated = api.SecretKeyRef(name=worker.token_secret_name, key=GENERATED_TOKEN_KEY)
        registration = spec.registration.model_copy(update={"token_secret_ref": generated})
        return replace(worker, spec=spec.model_copy(update={"registration": registration}), generates_token=True)

    @property
    def selector_labels(self) -> dict[str, str]:
        # The component label keeps worker pods apart from this worker's router pods.
        return {LABEL_WORKER: self.name, LABEL_COMPONENT: "worker"}

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "byoc-worker",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            LABEL_COMPONENT: "worker",
            LABEL_WORKER: self.name,
            LABEL_CAPABILITY: self.spec.capability.name,
        }

    @property
    def selector(self) -> str:
        """The pods' label selector as a string, for status.selector and the scale subresource."""
        return ",".join(f"{k}={v}" for k, v in self.selector_labels.items())

    @property
    def port(self) -> int:
        return self.spec.container.port if self.spec.container else api.DEFAULT_PORT

    @property
    def service_name(self) -> str:
        return self.name

    @property
    def deployment_name(self) -> str:
        return self.name

    @property
    def pods_service_name(self) -> str:
        return f"{self.name}-pods"

    @property
    def router_name(self) -> str:
        return f"{self.name}-router"

    @property
    def token_secret_name(self) -> str:
        """The Secret holding the generated worker token (when the spec names none)."""
        return f"{self.name}-token"

    @property
    def registers(self) -> bool:
        """Whether orchestrators are named or selected at all."""
        return bool(
            self.spec.orchestrators or self.spec.registration.orchestrator_selector or self.spec.orchestrator_refs
        )

    @property
    def mode(self) -> api.RegistrationMode:
        return self.spec.registration.mode

    @property
    def uses_router(self) -> bool:
        """BYOC registration needs one URL per capability: the router's."""
        return self.registers and self.mode is api.RegistrationMode.BYOC

    @property
    def endpoint(self) -> str:
        """The worker Service's in-cluster URL."""
        return f"http://{self.service_name}.{self.namespace}.svc:{self.port}"

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": api.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels,
            "ownerReferences": [self.owner_reference()],
        }
