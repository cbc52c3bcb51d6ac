"""The ``Livepeer`` job header and the ``Livepeer-Eth-Address`` sender header, read as a go-livepeer orchestrator
reads them.

Follows go-livepeer ``byoc/types.go`` (``JobRequest``, ``JobRequestDetails``, ``JobParameters``, ``JobSender``,
the error texts), ``byoc/utils.go`` ``parseJobRequest`` and ``byoc/job_orchestrator.go`` ``verifyJobCreds`` /
``verifyTokenCreds`` (the signature is hex, a leading ``0x`` is cut only when it is longer than 130 characters;
off-chain ``VerifySig`` accepts any signature, ``core/orchestrator.go``). Decoding is strict where Go's
``json.Unmarshal`` is: a string for an int, or an int for a string, is an error; unknown keys are ignored and
``null`` leaves the zero value.

No I/O here: the routes (``streams.py``, ``byoc.py``) turn a :class:`JobError` into the HTTP answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Self

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

# byoc/types.go error variables
NO_TIMEOUT = "no timeout_seconds set with request, timeout_seconds is required"
NO_CAPACITY = "No capacity available for capability"
NO_JOB_CREDS = "Could not verify job creds"

HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


class JobError(ValueError):
    """A job header the orchestrator refuses; ``str()`` is upstream's error text."""


class GoStruct(BaseModel):
    """A Go struct as ``encoding/json`` fills it: strict types, unknown keys ignored, null = zero value."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    @classmethod
    def decode(cls, text: str | bytes) -> Self:
        """Raises ``ValueError`` with a Go-like message (empty input: "unexpected end of JSON input")."""
        if not text.strip():
            raise ValueError("unexpected end of JSON input")
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(str(exc)) from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"json: cannot unmarshal {type(raw).__name__} into Go value of type {cls.__name__}")
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"json: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


class JobRequest(GoStruct):
    """``JobRequest``: what the base64 ``Livepeer`` header holds."""

    id: StrictStr = ""
    request: StrictStr = ""
    parameters: StrictStr = ""
    capability: StrictStr = ""
    sender: StrictStr = ""
    sig: StrictStr = ""
    timeout_seconds: StrictInt = 0


class JobRequestDetails(GoStruct):
    """``JobRequestDetails``: the ``request`` string, parsed."""

    stream_id: StrictStr = ""


class OrchestratorsFilter(GoStruct):
    include: list[StrictStr] = []
    exclude: list[StrictStr] = []


class JobParameters(GoStruct):
    """``JobParameters``: the ``parameters`` string, parsed (all flags default to off: ``omitempty`` bools)."""

    orchestrators: OrchestratorsFilter = OrchestratorsFilter()
    enable_video_ingress: StrictBool = False
    enable_video_egress: StrictBool = False
    enable_data_output: StrictBool = False


class JobSender(GoStruct):
    """``JobSender``: the base64 ``Livepeer-Eth-Address`` header of ``GET /process/token``."""

    addr: StrictStr = ""
    sig: StrictStr = ""


def signature_is_hex(sig: str) -> bool:
    """``hex.DecodeString`` of the signature after the ">130 characters: drop the first two" rule."""
    return HEX.fullmatch(sig[2:] if len(sig) > 130 else sig) is not None


def _b64_json(header: str) -> bytes:
    try:
        return base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("ErrorSegEncoding") from None


def parse_job_request(header: str) -> JobRequest:
    """``verifyJobCreds`` up to the capacity reservation; the errors ``setupOrchJob`` maps them to."""
    try:
        job = JobRequest.decode(_b64_json(header))
    except ValueError:
        raise JobError(NO_JOB_CREDS) from None
    if job.timeout_seconds == 0:
        raise JobError(NO_TIMEOUT)
    if not signature_is_hex(job.sig):
        raise JobError(NO_JOB_CREDS)  # errSegSig; off-chain VerifySig is always true after that
    return job


def parse_details(job: JobRequest) -> JobRequestDetails:
    """``setupOrchJob``'s last step: the ``request`` string must be a ``JobRequestDetails``."""
    try:
        return JobRequestDetails.decode(job.request)
    except ValueError as exc:
        raise JobError(f"Unable to unmarshal job request details err={exc}") from None


def parse_parameters(job: JobRequest) -> JobParameters:
    """``StartStream``: the ``parameters`` string; the error text is Go's own."""
    try:
        return JobParameters.decode(job.parameters)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def parse_sender(header: str) -> JobSender:
    """``verifyTokenCreds``: base64 JSON with a hex signature (any signature verifies off-chain)."""
    sender = JobSender.decode(_b64_json(header))
    if not signature_is_hex(sender.sig):
        raise ValueError("ErrSegSig")
    return sender
