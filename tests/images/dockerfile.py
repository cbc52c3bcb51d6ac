"""Just enough of a Dockerfile parser to run an image's entrypoint outside Docker: the final stage's ENV,
ENTRYPOINT, CMD, EXPOSE, USER and HEALTHCHECK (exec/JSON forms only: ours use nothing else)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    base: str
    name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    user: str | None = None
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    copies: list[list[str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def _exec_form(args: str, where: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} must use the exec (JSON) form: {args}") from exc
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    return value


def _env_pairs(args: str) -> dict[str, str]:
    """ENV k=v k2="v 2" (the modern form), with $VAR / ${VAR} left for expand()."""
    return dict(part.split("=", 1) for part in shlex.split(args))


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


def stages(path: Path) -> list[Stage]:
    out: list[Stage] = []
    build_args: dict[str, str] = {}  # ARGs before the first FROM, with their defaults: what FROM may name
    for word, args in instructions(path.read_text()):
        if word == "ARG" and not out:
            key, _, default = args.partition("=")
            build_args[key.strip()] = default.strip()
            continue
        if word == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--")]
            base = expand(parts[0], build_args)
            out.append(Stage(base=base, name=parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
            continue
        stage = out[-1]
        if word == "ENV":
            for key, value in _env_pairs(args).items():
                stage.env[key] = expand(value, stage.env)
        elif word == "ENTRYPOINT":
            stage.entrypoint = _exec_form(args, "ENTRYPOINT")
            stage.cmd = []  # as Docker does: a new ENTRYPOINT resets an inherited CMD
        elif word == "CMD":
            stage.cmd = _exec_form(args, "CMD")
        elif word == "EXPOSE":
            stage.expose += [int(p.split("/")[0]) for p in args.split()]
        elif word == "USER":
            stage.user = args
        elif word == "HEALTHCHECK":
            options, _, command = args.partition("CMD")
            stage.healthcheck_options = dict(o.lstrip("-").split("=", 1) for o in options.split())
            stage.healthcheck = _exec_form(command.strip(), "HEALTHCHECK CMD")
        elif word == "COPY":
            stage.copies.append(shlex.split(args))
    return out


def final_stage(path: Path) -> Stage:
    return stages(path)[-1]
