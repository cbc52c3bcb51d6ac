"""BYOCWorker: what runs in the worker container (the bundled runtime, or the user's image) and its security."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from byoc_operator.api.schema import (
    BUILTIN_PROCESSORS,
    CAPABILITY_PATTERN,
    DEFAULT_CAPABILITY,
    DEFAULT_PORT,
    PROCESSOR_CLASS_PATTERN,
    Model,
    checked,
    free_form,
    image_rule,
    rule,
    validations,
)


class Capability(Model):
    name: str = Field(
        default=DEFAULT_CAPABILITY,
        min_length=1,
        max_length=63,
        pattern=CAPABILITY_PATTERN,
        description="Capability name gateways route jobs by (registered with each orchestrator). "
        "Lower-case letters, digits and '-'.",
    )
    description: str = Field(default="", max_length=256, description="Human-readable description sent at registration.")


# Where runtime.secretRefs appear in the worker container, one file each (render/secret_files.py mounts them).
SECRET_FILES_DIR = "/var/run/byoc/secrets"
# A file name in that directory: no path separator, no leading dot (the kubelet keeps its own ..data links there).
SECRET_FILE_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
# A Secret's name (a DNS subdomain) and key, as Kubernetes allows them.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


class SecretFile(Model):
    """A key of a Secret in the BYOCWorker's namespace, mounted read-only as a file of the worker container."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="Secret in the BYOCWorker's namespace.",
    )
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN, description="Key in the Secret.")
    file: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_FILE_PATTERN,
        description=f"File name under {SECRET_FILES_DIR}/ (the runtime finds the directory in BYOC_SECRETS_DIR), "
        "e.g. 'hf-token'. Letters, digits, '.', '_' and '-', not starting with '.'.",
    )


def one_file_each(refs: list[SecretFile] | None) -> list[SecretFile] | None:
    """The API server refuses a file name twice (list type map); the same check for specs it has not seen."""
    files = [ref.file for ref in refs or []]
    if len(set(files)) != len(files):
        raise ValueError("runtime.secretRefs names a file more than once")
    return refs


class RuntimeContainer(Model):
    """The bundled runtime image, running one of its processors or a PyTrickle-style processor class."""

    model_config = checked(
        rule(
            f"self.processor in {BUILTIN_PROCESSORS} || self.processor.matches(r'{PROCESSOR_CLASS_PATTERN}')",
            "runtime.processor must be a built-in processor (" + ", ".join(BUILTIN_PROCESSORS) + ") or "
            "a class reference like 'my_package.module:MyProcessor'",
        )
    )

    processor: str = Field(
        default="passthrough",
        min_length=1,
        max_length=253,
        description="Processor to run: a built-in name (" + ", ".join(BUILTIN_PROCESSORS) + ") or a "
        "PyTrickle-style processor class as 'package.module:Class' importable in the image.",
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="Initial processor parameters (JSON object), passed to load_model and update_params. Not "
        "secret: they are in the pods' environment (BYOC_PARAMS), in the Deployment and in what the runtime "
        "reports; put credentials in secretRefs.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    secret_refs: Annotated[list[SecretFile] | None, AfterValidator(one_file_each)] = Field(
        default=None,
        max_length=16,
        description=f"Secret keys the processor reads as files, mounted read-only under {SECRET_FILES_DIR}/ "
        "in the worker container (an API key, a model hub token). Their values never go into the pod spec or "
        "the status; the kubelet updates the files when a Secret changes. Each file name once.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["file"]},
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        json_schema_extra=validations(image_rule("runtime.image")),
        description="Override of the runtime image; defaults to the image the operator was installed with.",
    )


ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


class EnvVar(Model):
    """A Kubernetes EnvVar."""

    name: str = Field(min_length=1, max_length=253, pattern=ENV_NAME_PATTERN, description="Variable name.")
    value: str | None = Field(default=None, description="Value.")
    value_from: dict[str, Any] | None = free_form(
        "Where the value comes from (Kubernetes EnvVarSource: fieldRef, resourceFieldRef, configMapKeyRef, "
        "secretKeyRef)."
    )


def localhost_profile_rule(field: str) -> dict[str, str]:
    return rule(
        "(self.type == 'Localhost') == has(self.localhostProfile)",
        f"{field}.localhostProfile is required with type Localhost, and only then",
    )


class SeccompProfile(Model):
    model_config = checked(localhost_profile_rule("seccompProfile"))

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = Field(
        description="'RuntimeDefault' (the default), 'Localhost' (a profile installed on the node) or "
        "'Unconfined' (only where the operator's administrator allows privileged pods)."
    )
    localhost_profile: str | None = Field(default=None, max_length=4096, description="Localhost: the profile file.")


class AppArmorProfile(Model):
    model_config = checked(localhost_profile_rule("appArmorProfile"))

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = Field(
        description="'RuntimeDefault', 'Localhost' or 'Unconfined' (only where privileged pods are allowed)."
    )
    localhost_profile: str | None = Field(default=None, max_length=4096, description="Localhost: the profile name.")


class Capabilities(Model):
    add: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Capabilities to add (only those the operator's administrator allows).",
    )
    drop: list[str] | None = Field(default=None, max_length=64, description="Capabilities to drop (default: ALL).")


class ContainerSecurityContext(Model):
    """The parts of a container securityContext a BYOCWorker may set. Some values (privileged, escalation,
    added capabilities, Unconfined profiles, root) are refused unless the operator's administrator allows them."""

    allow_privilege_escalation: bool | None = Field(default=None, description="Default false.")
    privileged: bool | None = Field(default=None, description="Default false.")
    capabilities: Capabilities | None = Field(default=None, description="Default: drop ALL, add none.")
    read_only_root_filesystem: bool | None = Field(default=None, description="Mount the root filesystem read-only.")
    run_as_non_root: bool | None = Field(default=None, description="Refuse to start as root.")
    run_as_user: int | None = Field(default=None, ge=0, le=2147483647, description="User id (default: the image's).")
    run_as_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group id.")
    seccomp_profile: SeccompProfile | None = Field(default=None, description="Default: the pod's (RuntimeDefault).")
    app_armor_profile: AppArmorProfile | None = Field(default=None, description="AppArmor profile.")


class PodSecurityContext(Model):
    """The parts of a pod securityContext a BYOCWorker may set (seccomp RuntimeDefault stays unless replaced)."""

    run_as_non_root: bool | None = Field(default=None, description="Refuse to start containers as root.")
    run_as_user: int | None = Field(default=None, ge=0, le=2147483647, description="User id of every container.")
    run_as_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group id.")
    fs_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group owning mounted volumes.")
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None, description="When volume ownership is changed to fsGroup."
    )
    supplemental_groups: list[int] | None = Field(default=None, max_length=64, description="Extra group ids.")
    seccomp_profile: SeccompProfile | None = Field(default=None, description="Default: RuntimeDefault.")
    app_armor_profile: AppArmorProfile | None = Field(default=None, description="AppArmor profile.")


class UserContainer(Model):
    """Any image that speaks the worker REST contract (PyTrickle's StreamServer or compatible)."""

    image: str = Field(
        min_length=1,
        max_length=512,
        json_schema_extra=validations(image_rule("container.image")),
        description="Worker image, e.g. 'ghcr.io/acme/worker:1.2'.",
    )
    command: list[str] | None = Field(default=None, description="Entrypoint override.")
    args: list[str] | None = Field(default=None, description="Arguments to the entrypoint.")
    env: list[EnvVar] | None = Field(default=None, max_length=256, description="Environment variables.")
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="Port the worker REST API listens on.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy."
    )
    security_context: ContainerSecurityContext | None = Field(
        default=None,
        description="Container securityContext (default: no privilege escalation, all capabilities dropped; set "
        "runAsNonRoot/runAsUser here when your image allows). Fields you set replace the default's, the others "
        "stay.",
    )
