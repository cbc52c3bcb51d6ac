"""What rendering needs to know about one BYOCWorker, and the names and labels of its children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byoc_operator import api

LABEL_WORKER = f"{api.GROUP}/worker"
LABEL_CAPABILITY = f"{api.GROUP}/capability"
LABEL_COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "byoc-operator"
FIELD_MANAGER = "byoc-operator"
ROUTER_PORT = 8080


@dataclass(frozen=True)
class Worker:
    """A parsed BYOCWorker plus the operator-wide defaults that rendering depends on."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: api.BYOCWorkerSpec
    runtime_image: str

    @classmethod
    def from_body(cls, body: dict[str, Any], runtime_image: str) -> Worker:
        """Parse an object as the API server returns it; raises pydantic.ValidationError on a bad spec."""
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
            spec=api.BYOCWorkerSpec.model_validate(body.get("spec") or {}),
            runtime_image=runtime_image,
        )

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
    def registers(self) -> bool:
        """Whether orchestrators are named or selected at all."""
        return bool(
            self.spec.orchestrators or self.spec.registration.orchestrator_selector or self.spec.orchestrator_refs
        )

    @property
    def uses_router(self) -> bool:
        """BYOC registration needs one URL per capability: the router's."""
        return self.registers and self.spec.registration.protocol == "byoc"

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
