"""What the worker's owner and each stream may set for the ``whisper`` processor. Pure.

The owner's settings (``runtime.params`` / ``BYOC_PARAMS``, read once by ``load_model``) say where weights come
from and what a stream may choose. The same params are every stream's defaults, so a stream's own params are
read only for the keys in ``StreamOptions``: a client can pick a model the owner allowed, never a file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# A checkpoint name (tiny, base.en, large-v3, my-finetune): the file is <model_dir>/<name>.pt.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]


class TranscriberSettings(BaseModel):
    """The worker owner's settings."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    model: ModelName = "tiny"
    # Where checkpoints live (the modelCache PVC's mountPath, or a directory baked into a user image).
    model_dir: Path = Path("/models/whisper")
    # A checkpoint file for `model` itself, anywhere (instead of <model_dir>/<model>.pt).
    model_path: Path | None = None
    # Models streams may ask for besides `model` (each loaded once per pod when first asked for).
    allowed_models: tuple[ModelName, ...] = ()
    # Fetch an official checkpoint missing from model_dir with whisper's own downloader (needs internet, and a
    # writable model_dir: modelCache.readOnly false).
    download: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # How long a stream start waits for its model; past it the stream runs and transcripts start once loaded.
    load_wait_s: Annotated[float, Field(ge=0, le=60)] = 10.0

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value

    def allows(self, model: str) -> bool:
        return model == self.model or model in self.allowed_models


class StreamOptions(BaseModel):
    """One stream's transcription options (its params, over the owner's defaults)."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    model: ModelName
    language: str | None = None  # None: detected on every window
    task: Literal["transcribe", "translate"] = "transcribe"
    window_s: Annotated[float, Field(ge=1, le=30)] = 5.0  # audio per transcription (whisper sees 30 s at most)
    # The end of each window is transcribed again with the next one, unless a segment that started before it
    # was published: a word cut at the window's edge gets its whole sound the second time.
    overlap_s: Annotated[float, Field(ge=0, le=10)] = 1.0
    max_tokens: Annotated[int, Field(ge=1, le=224)] = 96  # decode bound per window (whisper's own is 224)
    # A window that has not been transcribed by the time this much audio waits is skipped (the model is
    # slower than real time): captions stay live instead of falling further behind.
    max_lag_s: Annotated[float, Field(ge=1, le=300)] = 15.0

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        if value in (None, "", "auto"):
            return None
        from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

        code = TO_LANGUAGE_CODE.get(str(value).lower(), str(value).lower())
        if code not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}: use a code such as en, de, ja, or auto")
        return code

    @model_validator(mode="after")
    def _overlap_inside_window(self) -> StreamOptions:
        if self.overlap_s > self.window_s / 2:
            raise ValueError(f"overlap_s ({self.overlap_s:g}) may be at most half of window_s ({self.window_s:g})")
        if self.max_lag_s < self.window_s:
            raise ValueError(f"max_lag_s ({self.max_lag_s:g}) must be at least window_s ({self.window_s:g})")
        return self


class OptionsRefused(ValueError):
    """Stream params the processor cannot use; the message says which and why."""


def stream_options(params: dict[str, Any], settings: TranscriberSettings) -> StreamOptions:
    """The options ``params`` ask for, the owner's model when they name none. Raises ``OptionsRefused``."""
    try:
        options = StreamOptions.model_validate({"model": settings.model, **params})
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        raise OptionsRefused(f"whisper params refused: {reasons}") from None
    if not settings.allows(options.model):
        allowed = ", ".join((settings.model, *settings.allowed_models))
        raise OptionsRefused(f"whisper model {options.model!r} is not offered by this worker (offered: {allowed})")
    return options
