"""The CRD is generated from the pydantic models; the files in the repo must match the generator."""

from __future__ import annotations

from pathlib import Path

import yaml
from byoc_operator import api, crd

ROOT = Path(__file__).resolve().parents[2]


def test_crd_files_are_up_to_date() -> None:
    text = crd.render()
    for path in [
        ROOT / "crds" / crd.CRD_FILE,
        *ROOT.glob(f"charts/*/crds/{crd.CRD_FILE}"),
        *ROOT.glob(f"charts/*/templates/crds/{crd.CRD_FILE}"),
    ]:
        assert path.read_text() == text, f"{path} is stale: run `python -m byoc_operator.crd crds`"
    assert (ROOT / "crds" / crd.CRD_FILE).exists()


def _walk(node: object, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_schema_is_structural() -> None:
    schema = crd.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        if "properties" in node:
            assert node.get("type") == "object", path


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = crd.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    missing = []

    def visit(node: dict, path: str) -> None:
        for name, prop in (node.get("properties") or {}).items():
            if not prop.get("description"):
                missing.append(f"{path}.{name}")
            visit(prop, f"{path}.{name}")
            visit(prop.get("items") or {}, f"{path}.{name}[]")

    visit(spec, "spec")
    assert missing == []


def test_names_subresources_and_columns() -> None:
    d = crd.definition()["spec"]
    assert d["names"]["shortNames"] == api.SHORT_NAMES and "livepeer" in d["names"]["categories"]
    version = d["versions"][0]
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == ["Capability", "Ready", "Capacity"]
    assert yaml.safe_load(crd.render()) == crd.definition()
