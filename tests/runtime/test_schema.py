"""Request validation (pytrickle api.py rules, pydantic errors naming the field)."""

from __future__ import annotations

import pytest
from byoc_edge.schema import StreamParams, StreamStartRequest, field_errors, nesting_depth
from pydantic import ValidationError


def test_params_convert_integer_strings_and_keep_unknown_keys() -> None:
    params = StreamParams.model_validate({"width": "704", "height": 384, "max_framerate": "30", "prompt": "cat"})
    assert params.as_dict() == {"width": 704, "height": 384, "max_framerate": 30, "prompt": "cat"}


def test_only_given_params_are_reported() -> None:
    assert StreamParams.model_validate({"strength": 0.5}).as_dict() == {"strength": 0.5}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"width": 512}, "params"),
        ({"width": 0, "height": 512}, "params.width"),
        ({"width": -1, "height": 512}, "params.width"),
        ({"width": "abc", "height": 512}, "params.width"),
        ({"width": True, "height": 512}, "params.width"),
        ({"width": 512.5, "height": 512}, "params.width"),
        ({"max_framerate": 0}, "params.max_framerate"),
        ({"max_framerate": 61}, "params.max_framerate"),
        ({"detect_out_resolution": "maybe"}, "params.detect_out_resolution"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        StreamStartRequest.model_validate({"gateway_request_id": "g", "params": params})
    assert field in [e["field"] for e in field_errors(info.value)]


def test_start_request_requires_gateway_request_id_and_keeps_gateway_keys() -> None:
    with pytest.raises(ValidationError) as info:
        StreamStartRequest.model_validate({"subscribe_url": "http://x/in"})
    assert field_errors(info.value)[0]["field"] == "gateway_request_id"
    request = StreamStartRequest.model_validate(
        {"gateway_request_id": "g", "params": None, "stream_id": "abc", "subscribe_url": ""}
    )
    assert request.params.as_dict() == {} and request.subscribe_url is None
    assert request.model_extra == {"stream_id": "abc"}


def test_urls_must_be_http() -> None:
    with pytest.raises(ValidationError) as info:
        StreamStartRequest.model_validate({"gateway_request_id": "g", "publish_url": "ftp://x"})
    assert field_errors(info.value)[0]["field"] == "publish_url"


def test_nesting_depth_is_counted_without_recursion() -> None:
    assert nesting_depth(1) == 0 and nesting_depth({}) == 1 and nesting_depth({"a": [1, {"b": 2}]}) == 3
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth(deep) == 100_001
