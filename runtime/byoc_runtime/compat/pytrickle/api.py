"""``pytrickle.api`` stand-in: the request models."""

from byoc_runtime.api.schema import StreamParams as StreamParamsUpdateRequest
from byoc_runtime.api.schema import StreamStartRequest

__all__ = ["StreamParamsUpdateRequest", "StreamStartRequest"]
