"""How the runtime package's commands are configured: every command-line flag also reads an environment
variable (``<PREFIX><FLAG>``), so the same image runs from args or from a pod's env alone."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

# flag -> (type for argparse, help)
Flags = dict[str, tuple[type, str]]


def env_name(prefix: str, flag: str) -> str:
    return prefix + flag.upper().replace("-", "_")


def build_parser(prog: str, description: str, flags: Flags, prefix: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for flag, (kind, text) in flags.items():
        parser.add_argument(f"--{flag}", type=kind, default=None, help=f"{text} [env {env_name(prefix, flag)}]")
    return parser


def gather(
    parser: argparse.ArgumentParser,
    flags: Flags,
    prefix: str,
    argv: Sequence[str] | None,
    env: Mapping[str, str],
    token_env_default: str,
) -> dict[str, Any]:
    """Flag values, else environment values, by field name; plus ``token`` read from the variable that
    ``token_env`` names (the token itself never goes on a command line)."""
    args = vars(parser.parse_args(argv))
    values: dict[str, Any] = {}
    for flag in flags:
        key = flag.replace("-", "_")
        if args.get(key) is not None:
            values[key] = args[key]
        elif env_name(prefix, flag) in env:
            values[key] = env[env_name(prefix, flag)]
    token_env = values.get("token_env", token_env_default)
    if env.get(token_env):
        values["token"] = env[token_env]
    return values
