"""Command line and BYOC_* environment."""

from __future__ import annotations

import pytest
from byoc_runtime.config import load_config


def test_defaults() -> None:
    config = load_config([], {})
    assert (config.port, config.processor, config.capacity, config.token) == (8000, "passthrough", 1, None)


def test_env_fills_in_and_flags_win() -> None:
    env = {"BYOC_PORT": "9000", "BYOC_PROCESSOR": "grayscale", "BYOC_CAPACITY": "3", "BYOC_PARAMS": '{"a": 1}'}
    config = load_config(["--port", "9100"], env)
    assert (config.port, config.processor, config.capacity, config.params) == (9100, "grayscale", 3, {"a": 1})


def test_token_comes_from_the_named_variable() -> None:
    assert load_config([], {"BYOC_TOKEN": "t1"}).token == "t1"
    assert load_config(["--token-env", "ORCH_TOKEN"], {"ORCH_TOKEN": "t2", "BYOC_TOKEN": "t1"}).token == "t2"


def test_pytrickle_capability_name_variable() -> None:
    assert load_config([], {"CAPABILITY_NAME": "cap"}).capability_name == "cap"


@pytest.mark.parametrize(
    ("argv", "env", "name"),
    [
        (["--capacity", "0"], {}, "capacity"),
        ([], {"BYOC_PARAMS": "[1]"}, "params"),
        ([], {"BYOC_PARAMS": "{bad"}, "params"),
        (["--frame-device", "tpu"], {}, "frame_device"),
    ],
)
def test_bad_values_name_the_setting(argv: list[str], env: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name.split("_")[0]):
        load_config(argv, env)
