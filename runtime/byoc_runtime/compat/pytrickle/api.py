"""``pytrickle.api`` stand-in: the request models."""

from byoc_edge.schema import StreamParams as StreamParamsUpdateRequest
from byoc_edge.schema import StreamStartRequest

__all__ = ["StreamParamsUpdateRequest", "StreamStartRequest"]
