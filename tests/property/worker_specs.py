"""Hypothesis strategies for BYOCWorker specs, built by walking the pydantic models in `byoc_operator.api`.

Every field gets a strategy from its type and constraints (bounds, lengths, patterns, and the regex of a
`self.matches(...)` CEL rule on the field), so fields added to the models are covered without edits here.
Only fields whose content Kubernetes itself defines (label values, quantities, object names...) get a
hand-written strategy in `KUBERNETES_CONTENT`: the CRD leaves those to the API server's own validation of the
children, and a spec is only "valid" if its children can be created. Free-form fields not listed there stay
empty, and `within_rules` meets the cross-field CEL rules known here.

`mutations` breaks one generically chosen field of a valid spec (wrong type, out of range, off-pattern).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from byoc_operator import api
from byoc_operator.pod_policy import PodPolicy
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# An orchestrator nobody listens on: registration fails fast and never leaves the machine.
CLOSED_PORT_URL = "http://127.0.0.1:9"
# What the administrator allows the generated specs (the Reconciler in the property tests runs with it).
POLICY = PodPolicy(allowed_runtime_classes=frozenset({"nvidia", "kata"}))

# Text without control characters: the API server stores them in a spec, but some make the operator's apply of
# the children fail ("yaml: control characters are not allowed"), which it reports as ReconcileError.
CHARACTERS = st.characters(exclude_categories=("Cs", "Cc"))


def text(max_size: int = 20, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(CHARACTERS, min_size=min_size, max_size=max_size)


JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(10), inner, max_size=3),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(text(10), JSON_VALUES, max_size=4)

DNS_LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?\Z")
DNS_SUBDOMAIN = st.builds(".".join, st.lists(DNS_LABEL, min_size=1, max_size=3))
LABEL_VALUE = st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z")
LABEL_KEY = st.builds(
    lambda prefix, name: f"{prefix}/{name}" if prefix else name,
    st.none() | DNS_SUBDOMAIN,
    st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z"),
)
LABELS = st.dictionaries(LABEL_KEY, LABEL_VALUE, max_size=3)
UNITS = {"cpu": "m", "memory": "Mi", "ephemeral-storage": "Gi"}
# Requests within limits (the API server refuses a pod asking for more than its limit).
RESOURCES = st.builds(
    lambda amounts, limits: {
        "requests": {k: f"{n}{UNITS[k]}" for k, n in amounts.items()},
        **(
            {"limits": {k: n * 2 if k == "cpu" else f"{n * 2}{UNITS[k]}" for k, n in amounts.items()}} if limits else {}
        ),
    },
    st.dictionaries(st.sampled_from(sorted(UNITS)), st.integers(1, 4000), max_size=3),
    st.booleans(),
)
INT_OR_PERCENT = st.integers(0, 3) | st.from_regex(r"\A[0-9]{1,2}%\Z")

# Dotted alias paths (list items have no index) -> strategy for content Kubernetes defines.
KUBERNETES_CONTENT: dict[str, st.SearchStrategy[Any]] = {
    "replicas": st.integers(0, 2),  # many workers are applied at once: keep the scheduler's work small
    "autoscaling.minReplicas": st.integers(0, 2),
    "autoscaling.maxReplicas": st.integers(1, 3),
    "gpu.product": LABEL_VALUE.filter(bool),
    # The models also allow '+me' profiles, whose resource name ('nvidia.com/mig-1g.10gb+me') Kubernetes refuses.
    "gpu.migProfile": st.from_regex(r"\A[1-9]g\.[0-9]{1,3}gb\Z"),
    "gpu.resourceName": st.sampled_from(["nvidia.com/gpu", "amd.com/gpu", "example.com/accelerator"]),
    "scheduling.nodeSelector": LABELS,
    "scheduling.tolerations": st.lists(
        st.fixed_dictionaries(
            {"key": LABEL_KEY, "operator": st.just("Exists")},
            optional={"effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])},
        ),
        max_size=2,
    ),
    "scheduling.affinity": st.just({})
    | st.builds(
        lambda key, values: {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": "In", "values": values}]}]
                }
            }
        },
        LABEL_KEY,
        st.lists(LABEL_VALUE, min_size=1, max_size=2),
    ),
    "scheduling.topologySpreadConstraints": st.lists(
        st.builds(
            lambda skew, key, when: {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when},
            st.integers(1, 3),
            LABEL_KEY,
            st.sampled_from(["ScheduleAnyway", "DoNotSchedule"]),
        ),
        max_size=2,
        unique_by=lambda c: (c["topologyKey"], c["whenUnsatisfiable"]),
    ),
    # Runtime classes and system priority classes need the administrator's consent (POLICY allows these).
    "scheduling.runtimeClassName": st.sampled_from(sorted(POLICY.allowed_runtime_classes)),
    "scheduling.priorityClassName": DNS_SUBDOMAIN.filter(lambda name: not name.startswith("system-")),
    "resources": RESOURCES,
    "container.env": st.lists(
        st.fixed_dictionaries({"name": st.from_regex(r"\AUSER_[A-Za-z0-9_]{0,15}\Z"), "value": text(40)}),
        max_size=2,
        unique_by=lambda e: e["name"],
    ),
    "modelCache.claimName": DNS_SUBDOMAIN,
    "modelCache.mountPath": st.from_regex(r"\A/[a-z0-9_-]{1,12}(/[a-z0-9_-]{1,12}){0,2}\Z"),
    "probes.path": st.from_regex(r"\A/[A-Za-z0-9/_.~-]{0,30}\Z"),
    "imagePullSecrets": st.lists(DNS_SUBDOMAIN, max_size=2, unique=True),
    "podLabels": LABELS,
    "podAnnotations": st.dictionaries(LABEL_KEY, text(40), max_size=3),
    "orchestrators.url": st.just(CLOSED_PORT_URL),
    "orchestrators.secretRef.name": DNS_SUBDOMAIN,
    "orchestrators.tls.caBundleSecretRef.name": DNS_SUBDOMAIN,
    "registration.orchestratorSelector.matchLabels": LABELS,
    "runtime.params": JSON_OBJECTS,
    # Secret names are Kubernetes' to define; the API server refuses a file name twice (list type map).
    "runtime.secretRefs": st.lists(
        st.fixed_dictionaries(
            {
                "name": DNS_SUBDOMAIN,
                "key": st.from_regex(r"\A[-_a-zA-Z0-9][-._a-zA-Z0-9]{0,19}\Z"),
                "file": st.from_regex(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}\Z"),
            }
        ),
        max_size=3,
        unique_by=lambda ref: ref["file"],
    ),
    "networkPolicy.allowFrom": st.lists(
        st.builds(lambda cidr: {"ipBlock": {"cidr": cidr}}, st.sampled_from(["10.0.0.0/8", "192.168.1.0/24"]))
        | st.builds(lambda labels: {"podSelector": {"matchLabels": labels}}, LABELS),
        max_size=2,
    ),
    "container.securityContext": st.fixed_dictionaries(
        {},
        # (what needs no administrator's consent: tests/operator/test_pod_policy.py has the rest)
        optional={
            "runAsUser": st.integers(1, 65535),
            "runAsNonRoot": st.just(True),
            "readOnlyRootFilesystem": st.booleans(),
            "capabilities": st.fixed_dictionaries({"drop": st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=1)}),
        },
    ),
    "podSecurityContext": st.fixed_dictionaries(
        {},
        # (root needs the administrator's consent)
        optional={"runAsNonRoot": st.just(True), "runAsUser": st.integers(1, 65535), "fsGroup": st.integers(1, 65535)},
    ),
    "runtime.processor": st.sampled_from(api.BUILTIN_PROCESSORS) | st.from_regex(api.PROCESSOR_CLASS_PATTERN),
}

_MATCHES = re.compile(r"^self\.matches\(r'(.*)'\)$")


@dataclass(frozen=True)
class Constraints:
    ge: int | None = None
    le: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None


def constraints(field: FieldInfo) -> Constraints:
    found: dict[str, Any] = {}
    for meta in field.metadata:
        for name in ("ge", "le", "min_length", "max_length", "pattern"):
            if getattr(meta, name, None) is not None:
                found[name] = getattr(meta, name)
        if getattr(meta, "gt", None) is not None:
            found["ge"] = meta.gt + 1
        if getattr(meta, "lt", None) is not None:
            found["le"] = meta.lt - 1
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    for rule in extra.get("x-kubernetes-validations", ()):  # type: ignore[union-attr]
        match = _MATCHES.match(rule["rule"])
        if match:
            found["pattern"] = match.group(1)
    return Constraints(**found)


def fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The model's fields with forward references resolved (pydantic resolves them lazily)."""
    model.model_rebuild()
    return model.model_fields


def alias(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _args(annotation: Any) -> tuple[Any, ...]:
    """The non-None members of an optional or union annotation, or the annotation itself; an Annotated member as its
    type (its validator is the model's, e.g. api.BaseURL: the CEL rule says the same)."""
    members: tuple[Any, ...] = (annotation,)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return tuple(typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in members)


def _strings(c: Constraints) -> st.SearchStrategy[str]:
    low, high = c.min_length or 0, min(c.max_length or 40, 40)
    if c.pattern:
        return st.from_regex(c.pattern, fullmatch=True).filter(lambda s: low <= len(s) <= (c.max_length or 10**6))
    return text(max(low, high), low)


def for_type(annotation: Any, c: Constraints, path: str) -> st.SearchStrategy[Any]:
    """A strategy for values of one annotation that satisfy the field's constraints."""
    options = _args(annotation)
    if set(options) == {int, str}:
        return INT_OR_PERCENT  # Kubernetes' IntOrString: a count or a percentage
    if len(options) > 1:
        return st.one_of([for_type(a, c, path) for a in options])
    (annotation,) = options
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return JSON_VALUES
    if origin is typing.Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_values(annotation, path)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(c.ge if c.ge is not None else -(2**31), c.le if c.le is not None else 2**31)
    if annotation is float:
        return st.floats(c.ge, c.le, allow_nan=False, allow_infinity=False)
    if annotation is str:
        return _strings(c)
    if origin is list:
        high = min(c.max_length if c.max_length is not None else 3, 3)
        return st.lists(for_type(args[0], Constraints(), path), min_size=c.min_length or 0, max_size=high)
    if origin is dict:
        if args[1] is Any:
            return JSON_OBJECTS
        return st.dictionaries(_strings(Constraints(min_length=1)), for_type(args[1], Constraints(), path), max_size=3)
    raise TypeError(f"no strategy for {annotation!r} at {path}: add one to KUBERNETES_CONTENT")


def free_form(field: FieldInfo) -> bool:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return bool(extra.get("x-kubernetes-preserve-unknown-fields"))


def field_values(name: str, field: FieldInfo, prefix: str) -> st.SearchStrategy[Any]:
    path = f"{prefix}.{alias(name, field)}" if prefix else alias(name, field)
    if path in KUBERNETES_CONTENT:
        return KUBERNETES_CONTENT[path]
    if free_form(field):
        # Kept as given, so its content is Kubernetes' to define: empty unless KUBERNETES_CONTENT knows it.
        return st.just([] if typing.get_origin(_args(field.annotation)[0]) is list else {})
    return for_type(field.annotation, constraints(field), path)


def model_values(model: type[BaseModel], prefix: str = "") -> st.SearchStrategy[dict[str, Any]]:
    """Objects of this model as they go on the wire: required fields always, optional ones sometimes."""
    required, optional = {}, {}
    for name, field in fields(model).items():
        target = required if field.is_required() else optional
        target[alias(name, field)] = field_values(name, field, prefix)
    return st.fixed_dictionaries(required, optional=optional)


def orchestrator_within_rules(entry: dict[str, Any]) -> dict[str, Any]:
    """An orchestrators[] entry with a secret, one way of trust, and (its url is CLOSED_PORT_URL, http) plaintext
    allowed."""
    tls = dict(entry.get("tls", {}))
    if "caBundleSecretRef" in tls:
        tls.pop("insecureSkipVerify", None)
    if entry["url"].startswith("http://"):
        tls["allowPlaintext"] = True
    return {"secretRef": {"name": "orch-secret"}, **entry, "tls": tls}


def within_rules(spec: dict[str, Any]) -> dict[str, Any]:
    """Adjust a spec to the cross-field CEL rules the generic walk cannot see (each would otherwise refuse a
    good share of the specs). A rule added to the models later is still met by a refusal with its message."""
    spec = dict(spec)
    if "runtime" in spec and "container" in spec:
        del spec["container"]
    gpu = spec.get("gpu")
    if gpu and "migProfile" in gpu:
        spec["gpu"] = {**gpu, "count": 1}
    if "orchestrators" in spec:
        spec["orchestrators"] = [orchestrator_within_rules(o) for o in spec["orchestrators"]]
    budget = spec.get("disruptionBudget")
    if budget is not None and len(budget) != 1:
        spec["disruptionBudget"] = dict(list(budget.items())[:1]) or {"maxUnavailable": 1}
    scaling = spec.get("autoscaling")
    if scaling and scaling.get("minReplicas", 1) > scaling["maxReplicas"]:
        spec["autoscaling"] = {**scaling, "minReplicas": scaling["maxReplicas"]}
    return spec


def valid_specs() -> st.SearchStrategy[dict[str, Any]]:
    """Specs within every bound the models state and the cross-field rules known here."""
    return model_values(api.BYOCWorkerSpec).map(within_rules)


# -- breaking one field ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A scalar field of the spec: where it is and how to break it."""

    path: tuple[str, ...]  # aliases from spec down
    breakers: tuple[Any, ...]  # values the field must refuse


def _breakers(annotation: Any, c: Constraints) -> tuple[Any, ...]:
    kinds = set(_args(annotation))
    out: list[Any] = [{"not": "a scalar"}]
    if str not in kinds:
        out.append("a string")
    if int in kinds:
        if c.ge is not None:
            out.append(c.ge - 1)
        if c.le is not None:
            out.append(c.le + 1)
        out.append(1.5)
    if str in kinds and int not in kinds:
        out.append(7)
        if c.pattern:
            out.append("Not Valid Here!")
        if c.max_length is not None:
            out.append("a" * (c.max_length + 1))
        if c.min_length:
            out.append("")
    return tuple(out)


def leaves(model: type[BaseModel] = api.BYOCWorkerSpec, path: tuple[str, ...] = ()) -> list[Leaf]:
    """Every scalar field reachable through nested models, with values that break it."""
    out: list[Leaf] = []
    for name, field in fields(model).items():
        here = (*path, alias(name, field))
        (annotation, *rest) = _args(field.annotation)
        if not rest and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += leaves(annotation, here)
        elif not rest and typing.get_origin(annotation) is list and _is_model(typing.get_args(annotation)[0]):
            out += leaves(typing.get_args(annotation)[0], here)
        elif not rest and typing.get_origin(annotation) in (list, dict):
            continue  # containers: covered by the wrong-type cases of their parents
        elif typing.get_origin(annotation) is typing.Literal:
            out.append(Leaf(here, ("NotOneOfThem", 3)))
        elif annotation in (int, str, bool) or rest:
            out.append(Leaf(here, _breakers(field.annotation, constraints(field))))
    return out


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _set(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, *tail = path
    if not tail:
        return {**spec, head: value}
    inner = spec.get(head)
    if isinstance(inner, list):  # a list of objects: break its first item
        first = inner[0] if inner and isinstance(inner[0], dict) else {}
        return {**spec, head: [_set(first, tuple(tail), value), *inner[1:]]}
    return {**spec, head: _set(inner if isinstance(inner, dict) else {}, tuple(tail), value)}


def required_values(model: type[BaseModel], prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid objects of a model holding only its required fields, so breaking a field deeper breaks only it."""
    return st.fixed_dictionaries(
        {alias(n, f): field_values(n, f, prefix) for n, f in fields(model).items() if f.is_required()}
    )


@dataclass(frozen=True)
class Mutation:
    spec: dict[str, Any]
    field: str  # dotted path from spec, as the API server names it (list items as [0])
    value: Any


def _step(model: type[BaseModel], key: str) -> tuple[bool, Any]:
    """Down one field: whether it is a list, and the type of the field (or of its items)."""
    field = next(f for n, f in fields(model).items() if alias(n, f) == key)
    (annotation,) = _args(field.annotation)[:1]
    is_list = typing.get_origin(annotation) is list
    return is_list, typing.get_args(annotation)[0] if is_list else annotation


def _skeleton(draw: st.DrawFn, path: tuple[str, ...]) -> dict[str, Any]:
    """A valid spec holding the objects on the way to a field (lists get one item)."""
    spec: dict[str, Any] = {}
    model: type[BaseModel] = api.BYOCWorkerSpec
    trail: tuple[str, ...] = ()
    for key in path[:-1]:
        is_list, model = _step(model, key)
        trail = (*trail, key)
        item = draw(required_values(model, ".".join(trail)))
        spec = _set(spec, trail, [item] if is_list else item)
    return spec


def field_name(path: tuple[str, ...]) -> str:
    """The field as the API server's messages name it: spec.orchestrators[0].url."""
    parts, model = ["spec"], api.BYOCWorkerSpec
    for key in path:
        is_list, inner = _step(model, key)
        parts.append(f"{key}[0]" if is_list else key)
        model = inner
    return ".".join(parts)


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    """A spec valid everywhere but one scalar field, which holds a value its type or bounds refuse."""
    leaf = draw(st.sampled_from(leaves()))
    value = draw(st.sampled_from(leaf.breakers))
    return Mutation(_set(_skeleton(draw, leaf.path), leaf.path, value), field_name(leaf.path), value)
