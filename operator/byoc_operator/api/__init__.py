"""The BYOC API (byoc.livepeer.org/v1alpha1): the BYOCWorker and BYOCOrchestrator resources as pydantic models.

These models are the one source of truth for the resources: the CRDs' OpenAPI schemas (with their CEL rules)
are generated from them (see `crd.py`), and the operator parses every object it reconciles with them.
Field descriptions here are what `kubectl explain` shows, so they are written for users. The models live in one
module per part of the resource; everything is importable from here (`api.BYOCWorkerSpec`).
"""

from __future__ import annotations

from byoc_operator.api.byoc_orchestrator import (
    BYOCOrchestrator as BYOCOrchestrator,
)
from byoc_operator.api.byoc_orchestrator import (
    BYOCOrchestratorSpec as BYOCOrchestratorSpec,
)
from byoc_operator.api.byoc_orchestrator import (
    NamespaceSelector as NamespaceSelector,
)
from byoc_operator.api.byoc_orchestrator import (
    OperatorSecretKeyRef as OperatorSecretKeyRef,
)
from byoc_operator.api.byoc_orchestrator import (
    OrchestratorTrust as OrchestratorTrust,
)
from byoc_operator.api.byoc_worker import (
    BYOCWorker as BYOCWorker,
)
from byoc_operator.api.byoc_worker import (
    BYOCWorkerSpec as BYOCWorkerSpec,
)
from byoc_operator.api.byoc_worker import (
    BYOCWorkerStatus as BYOCWorkerStatus,
)
from byoc_operator.api.byoc_worker import (
    Condition as Condition,
)
from byoc_operator.api.byoc_worker import (
    OrchestratorStatus as OrchestratorStatus,
)
from byoc_operator.api.containers import (
    ENV_NAME_PATTERN as ENV_NAME_PATTERN,
)
from byoc_operator.api.containers import (
    AppArmorProfile as AppArmorProfile,
)
from byoc_operator.api.containers import (
    Capabilities as Capabilities,
)
from byoc_operator.api.containers import (
    Capability as Capability,
)
from byoc_operator.api.containers import (
    ContainerSecurityContext as ContainerSecurityContext,
)
from byoc_operator.api.containers import (
    EnvVar as EnvVar,
)
from byoc_operator.api.containers import (
    PodSecurityContext as PodSecurityContext,
)
from byoc_operator.api.containers import (
    RuntimeContainer as RuntimeContainer,
)
from byoc_operator.api.containers import (
    SeccompProfile as SeccompProfile,
)
from byoc_operator.api.containers import (
    UserContainer as UserContainer,
)
from byoc_operator.api.containers import (
    localhost_profile_rule as localhost_profile_rule,
)
from byoc_operator.api.placement import (
    GPU as GPU,
)
from byoc_operator.api.placement import (
    Autoscaling as Autoscaling,
)
from byoc_operator.api.placement import (
    DisruptionBudget as DisruptionBudget,
)
from byoc_operator.api.placement import (
    Drain as Drain,
)
from byoc_operator.api.placement import (
    ModelCache as ModelCache,
)
from byoc_operator.api.placement import (
    NetworkPolicy as NetworkPolicy,
)
from byoc_operator.api.placement import (
    Probes as Probes,
)
from byoc_operator.api.placement import (
    Resources as Resources,
)
from byoc_operator.api.placement import (
    Rollout as Rollout,
)
from byoc_operator.api.placement import (
    Scheduling as Scheduling,
)
from byoc_operator.api.placement import (
    Spread as Spread,
)
from byoc_operator.api.registration import (
    DECIMAL_PATTERN as DECIMAL_PATTERN,
)
from byoc_operator.api.registration import (
    ONE_WAY_OF_TRUST as ONE_WAY_OF_TRUST,
)
from byoc_operator.api.registration import (
    Expose as Expose,
)
from byoc_operator.api.registration import (
    LabelSelector as LabelSelector,
)
from byoc_operator.api.registration import (
    LiveRunnerPrice as LiveRunnerPrice,
)
from byoc_operator.api.registration import (
    OrchestratorRef as OrchestratorRef,
)
from byoc_operator.api.registration import (
    OrchestratorSelection as OrchestratorSelection,
)
from byoc_operator.api.registration import (
    OrchestratorTLS as OrchestratorTLS,
)
from byoc_operator.api.registration import (
    Pricing as Pricing,
)
from byoc_operator.api.registration import (
    Registration as Registration,
)
from byoc_operator.api.registration import (
    RegistrationMode as RegistrationMode,
)
from byoc_operator.api.registration import (
    SecretKeyRef as SecretKeyRef,
)
from byoc_operator.api.schema import (
    BUILTIN_PROCESSORS as BUILTIN_PROCESSORS,
)
from byoc_operator.api.schema import (
    CAPABILITY_PATTERN as CAPABILITY_PATTERN,
)
from byoc_operator.api.schema import (
    CATEGORIES as CATEGORIES,
)
from byoc_operator.api.schema import (
    DEFAULT_CAPABILITY as DEFAULT_CAPABILITY,
)
from byoc_operator.api.schema import (
    DEFAULT_PORT as DEFAULT_PORT,
)
from byoc_operator.api.schema import (
    GROUP as GROUP,
)
from byoc_operator.api.schema import (
    IMAGE_PATTERN as IMAGE_PATTERN,
)
from byoc_operator.api.schema import (
    KIND as KIND,
)
from byoc_operator.api.schema import (
    MIG_PROFILE_PATTERN as MIG_PROFILE_PATTERN,
)
from byoc_operator.api.schema import (
    ORCHESTRATOR_KIND as ORCHESTRATOR_KIND,
)
from byoc_operator.api.schema import (
    ORCHESTRATOR_PLURAL as ORCHESTRATOR_PLURAL,
)
from byoc_operator.api.schema import (
    ORCHESTRATOR_SHORT_NAMES as ORCHESTRATOR_SHORT_NAMES,
)
from byoc_operator.api.schema import (
    ORCHESTRATOR_SINGULAR as ORCHESTRATOR_SINGULAR,
)
from byoc_operator.api.schema import (
    ORIGIN_MESSAGE as ORIGIN_MESSAGE,
)
from byoc_operator.api.schema import (
    ORIGIN_PATTERN as ORIGIN_PATTERN,
)
from byoc_operator.api.schema import (
    PLURAL as PLURAL,
)
from byoc_operator.api.schema import (
    PROCESSOR_CLASS_PATTERN as PROCESSOR_CLASS_PATTERN,
)
from byoc_operator.api.schema import (
    RESERVED_ANNOTATION_PREFIXES as RESERVED_ANNOTATION_PREFIXES,
)
from byoc_operator.api.schema import (
    RESERVED_LABEL_PREFIXES as RESERVED_LABEL_PREFIXES,
)
from byoc_operator.api.schema import (
    SHORT_NAMES as SHORT_NAMES,
)
from byoc_operator.api.schema import (
    SINGULAR as SINGULAR,
)
from byoc_operator.api.schema import (
    URL_MESSAGE as URL_MESSAGE,
)
from byoc_operator.api.schema import (
    URL_PATTERN as URL_PATTERN,
)
from byoc_operator.api.schema import (
    VERSION as VERSION,
)
from byoc_operator.api.schema import (
    BaseURL as BaseURL,
)
from byoc_operator.api.schema import (
    Model as Model,
)
from byoc_operator.api.schema import (
    Origin as Origin,
)
from byoc_operator.api.schema import (
    channel_origins_field as channel_origins_field,
)
from byoc_operator.api.schema import (
    checked as checked,
)
from byoc_operator.api.schema import (
    checked_origin as checked_origin,
)
from byoc_operator.api.schema import (
    checked_url as checked_url,
)
from byoc_operator.api.schema import (
    free_form as free_form,
)
from byoc_operator.api.schema import (
    image_rule as image_rule,
)
from byoc_operator.api.schema import (
    rule as rule,
)
from byoc_operator.api.schema import (
    url_field as url_field,
)
from byoc_operator.api.schema import (
    validations as validations,
)
