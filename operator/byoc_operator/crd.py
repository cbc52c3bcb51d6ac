"""The BYOCWorker and BYOCOrchestrator CustomResourceDefinitions, generated from the pydantic models in `api/`.

`crds/byocworkers.byoc.livepeer.org.yaml`, `crds/byocorchestrators.byoc.livepeer.org.yaml` (and the chart's copies)
are written by `python -m byoc_operator.crd` and never edited by hand; a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from byoc_operator import api

CRD_NAME = f"{api.PLURAL}.{api.GROUP}"
CRD_FILE = f"{CRD_NAME}.yaml"
ORCHESTRATOR_CRD_NAME = f"{api.ORCHESTRATOR_PLURAL}.{api.GROUP}"
ORCHESTRATOR_CRD_FILE = f"{ORCHESTRATOR_CRD_NAME}.yaml"

# Keys of a JSON schema that a Kubernetes structural schema does not take.
_DROPPED = {"title", "additionalProperties", "$defs"}

PRINTER_COLUMNS = [
    {"name": "Capability", "type": "string", "jsonPath": ".spec.capability.name"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "description": "Ready pods / desired"},
    {"name": "Capacity", "type": "integer", "jsonPath": ".status.capacity", "description": "Sessions available"},
    {"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].reason"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn a pydantic JSON schema node into a Kubernetes structural OpenAPI v3 node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs)

    if schema.get("x-kubernetes-int-or-string"):
        keep = ("description", "default", "x-kubernetes-int-or-string", "x-kubernetes-validations")
        # No `default: null`: the API server drops it, and the stored CRD would differ from ours.
        return {k: v for k, v in schema.items() if k in keep and not (k == "default" and v is None)}

    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default") or schema.get(k) is not None}
        rest.pop("anyOf")
        if len(options) == 1:
            return structural({**options[0], **rest}, defs)
        if {o.get("type") for o in options} == {"integer", "string"}:
            return structural({**rest, "x-kubernetes-int-or-string": True}, defs)
        raise ValueError(f"no structural form for anyOf {options}")

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or key in ("anyOf",):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {name: structural(prop, defs) for name, prop in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        else:
            out[key] = value

    extra = schema.get("additionalProperties")
    if out.get("type") == "object" and "properties" not in out:
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs)
        elif extra is True or extra == {}:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "array" and out.pop("x-kubernetes-preserve-unknown-fields", False):
        out["items"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("default") is None:
        out.pop("default", None)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    node = structural(raw, raw.get("$defs", {}))
    _default_nested_objects(node, model)
    return node


def _default_nested_objects(node: dict[str, Any], model: type[BaseModel]) -> None:
    """Give object fields built by a default factory `default: {}`, so the API server fills in their
    nested defaults and `kubectl get -o yaml` shows the values the operator will use."""
    for name, field in model.model_fields.items():
        alias = field.alias or name
        prop = node.get("properties", {}).get(alias)
        annotation = field.annotation
        if prop is None or not isinstance(annotation, type) or not issubclass(annotation, BaseModel):
            continue
        if field.default_factory is not None:
            prop["default"] = {}
        _default_nested_objects(prop, annotation)


def status_schema() -> dict[str, Any]:
    node = model_schema(api.BYOCWorkerStatus)
    conditions = node["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return node


def definition() -> dict[str, Any]:
    spec = model_schema(api.BYOCWorkerSpec)
    spec["description"] = "Desired state of a BYOC worker fleet."
    status = status_schema()
    status["description"] = "Observed state, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "byoc-operator"}},
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": api.CATEGORIES,
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (api.BYOCWorker.__doc__ or "").strip(),
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {**spec, "default": {}},
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


ORCHESTRATOR_PRINTER_COLUMNS = [
    {"name": "URL", "type": "string", "jsonPath": ".spec.url"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def orchestrator_definition() -> dict[str, Any]:
    spec = model_schema(api.BYOCOrchestratorSpec)
    spec["description"] = "Where the orchestrator is, its secret and trust, and which namespaces may use it."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": ORCHESTRATOR_CRD_NAME, "labels": {"app.kubernetes.io/part-of": "byoc-operator"}},
        "spec": {
            "group": api.GROUP,
            "scope": "Cluster",
            "names": {
                "kind": api.ORCHESTRATOR_KIND,
                "listKind": f"{api.ORCHESTRATOR_KIND}List",
                "plural": api.ORCHESTRATOR_PLURAL,
                "singular": api.ORCHESTRATOR_SINGULAR,
                "shortNames": api.ORCHESTRATOR_SHORT_NAMES,
                "categories": api.CATEGORIES,
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": ORCHESTRATOR_PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (api.BYOCOrchestrator.__doc__ or "").strip(),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = "# Generated by `python -m byoc_operator.crd` from operator/byoc_operator/api/. Do not edit.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(definition(), sort_keys=False, width=120)


def render_orchestrator() -> str:
    return HEADER + yaml.safe_dump(orchestrator_definition(), sort_keys=False, width=120)


def files() -> dict[str, str]:
    """Every generated CRD file, by name."""
    return {CRD_FILE: render(), ORCHESTRATOR_CRD_FILE: render_orchestrator()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or check) the generated CRD files.")
    parser.add_argument("paths", nargs="*", type=Path, help="directories to write the CRD files into; stdout if none")
    parser.add_argument("--check", action="store_true", help="fail if a file differs from the generated CRD")
    args = parser.parse_args(argv)
    generated = files()
    if not args.paths:
        sys.stdout.write("---\n".join(generated.values()))
        return 0
    stale = []
    for directory in args.paths:
        for name, text in generated.items():
            target = directory / name
            if args.check:
                if not target.exists() or target.read_text() != text:
                    stale.append(str(target))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    if stale:
        print("stale CRD files (run `python -m byoc_operator.crd crds charts/...`):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
