"""Whisper checkpoints: where a model's weights are, loading each once per process, and transcribing a window.

``whisper.load_model`` is the one loading path, for the owner's files and for whisper's own download alike. A
model is shared by every session of the pod; its decoding installs hooks on the model for the duration of a
call, so calls take turns on a lock (the sessions' audio buffers and captions stay their own).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .options import StreamOptions, TranscriberSettings
from .windows import Segment, Window

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300
# Above this no-speech probability, with a mean token log-probability below the threshold, a window is silence
# (whisper's transcribe() defaults).
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


class TranscriberError(Exception):
    """A model that cannot be used; the message is meant for the stream's user."""


class WeightsMissing(TranscriberError):
    pass


class CheckpointBroken(TranscriberError):
    pass


def _whisper() -> Any:
    try:
        import whisper
    except ImportError as exc:
        raise TranscriberError(
            "the whisper processor needs openai-whisper: install byoc-runtime[whisper] (the runtime image has it)"
        ) from exc
    return whisper


@dataclass(frozen=True, slots=True)
class Weights:
    """Where a model comes from: a checkpoint file, or whisper's download into ``download_root``."""

    name: str
    path: Path | None = None
    download_root: Path | None = None

    def describe(self) -> str:
        return str(self.path) if self.path is not None else f"{self.name} (download into {self.download_root})"


def checkpoint_file(name: str) -> str:
    """The file name whisper gives an official model (``turbo`` is large-v3-turbo.pt), else ``<name>.pt``."""
    url = _whisper()._MODELS.get(name)
    return url.rsplit("/", 1)[-1] if url else f"{name}.pt"


def locate_weights(settings: TranscriberSettings, name: str) -> Weights:
    """Where ``name``'s weights are. Raises ``WeightsMissing`` saying where they were looked for."""
    path = settings.model_path if name == settings.model and settings.model_path else None
    path = path or settings.model_dir / checkpoint_file(name)
    if path.is_file():
        return Weights(name, path=path)
    if settings.download and name in _whisper().available_models():
        return Weights(name, download_root=settings.model_dir)
    hint = (
        "put the checkpoint there (the modelCache PVC), or set download: true in runtime.params to fetch it"
        if name in _whisper().available_models()
        else "put the checkpoint there"
    )
    raise WeightsMissing(f"no weights for whisper model {name!r}: {path} is not a file; {hint}")


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str
    segments: list[Segment]


class LoadedModel:
    """One loaded checkpoint on its device (fp16 on CUDA), taken in turns."""

    def __init__(self, model: Any, name: str, device: torch.device) -> None:
        self.model = model
        self.name = name
        self.device = device
        self.fp16 = device.type == "cuda"
        self._turn = threading.Lock()
        # The model's own thread: calls take turns anyway, and waiting for a turn must not hold one of the
        # event loop's default executor threads (other work of the process needs those).
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"whisper-{name}")

    def transcribe(self, window: Window, options: StreamOptions, prompt: str = "") -> Transcript:
        """Whisper's view of ``window``: one encoder pass and one decode of at most ``max_tokens`` tokens (no
        temperature fallback: the work per window stays bounded)."""
        whisper = _whisper()
        from whisper.decoding import DecodingOptions

        decoding = DecodingOptions(
            task=options.task,
            language=options.language,
            sample_len=options.max_tokens,
            prompt=prompt or None,
            fp16=self.fp16,
        )
        with self._turn, torch.inference_mode():
            audio = torch.from_numpy(window.samples)
            mel = whisper.log_mel_spectrogram(audio, self.model.dims.n_mels, device=self.device)
            mel = whisper.pad_or_trim(mel, whisper.audio.N_FRAMES)
            result = self.model.decode(mel, decoding)
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOGPROB_THRESHOLD:
            return Transcript(result.language, [])
        tokenizer = whisper.tokenizer.get_tokenizer(
            self.model.is_multilingual, num_languages=self.model.num_languages, language=result.language
        )
        return Transcript(result.language, segments_from_tokens(result.tokens, tokenizer, window))


def segments_from_tokens(tokens: list[int], tokenizer: Any, window: Window) -> list[Segment]:
    """Split decoded tokens at whisper's timestamp tokens (``<|t|> text <|t|>``) into segments on the stream's
    clock; text after the last timestamp runs to the window's end."""
    precision = 0.02  # seconds per timestamp token (whisper: 2 mel frames of 10 ms)
    begin = tokenizer.timestamp_begin
    found: list[tuple[float, float, list[int]]] = []
    start, text = 0.0, list[int]()
    for token in tokens:
        if token >= begin:
            at = min((token - begin) * precision, window.seconds)
            if text:
                found.append((start, max(at, start), text))
                text = []
            start = at
        elif token < tokenizer.eot:
            text.append(token)
    if text:
        found.append((start, window.seconds, text))
    segments = []
    for seg_start, seg_end, seg_tokens in found:
        words = tokenizer.decode(seg_tokens).strip()
        if words:
            segments.append(Segment(round(window.start + seg_start, 3), round(window.start + seg_end, 3), words))
    return segments


class SharedModels:
    """The process's loaded models, by checkpoint and device: loaded once, in the background, shared by all.

    A failed load is not kept: the next stream asking for the model tries again (the file may have been fixed).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads: dict[tuple[Weights, str], concurrent.futures.Future[LoadedModel]] = {}
        self._loader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper-load")

    def get(self, weights: Weights, device: torch.device) -> concurrent.futures.Future[LoadedModel]:
        key = (weights, str(device))
        with self._lock:
            future = self._loads.get(key)
            if future is None or (future.done() and future.exception() is not None):
                future = self._loader.submit(_load, weights, device)
                self._loads[key] = future
            return future


def _load(weights: Weights, device: torch.device) -> LoadedModel:
    whisper = _whisper()
    log.info("loading whisper model %s on %s", weights.describe(), device)
    try:
        if weights.path is not None:
            model = whisper.load_model(str(weights.path), device=device)
        else:
            model = whisper.load_model(weights.name, device=device, download_root=str(weights.download_root))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        raise CheckpointBroken(f"whisper checkpoint {weights.describe()} could not be loaded: {reason}") from exc
    return LoadedModel(model, weights.name, device)


SHARED_MODELS = SharedModels()
