"""``WhisperProcessor``: buffers a stream's audio, transcribes it in windows, publishes each segment as a data
record; audio passes through, video is not touched (the processor has no video handler).

Records, one per segment, in order (``seq`` counts from 0 per stream), on the stream's clock (the input's
presentation timestamps, which the output keeps)::

    {"type": "transcript", "seq": 0, "start": 12.48, "end": 15.0, "text": "...", "language": "en", "model": "tiny"}

The model's state goes on the events channel as ``{"type": "transcriber", "state": "loading" | "ready" |
"failed" | "behind" | "error", "model": ..., "device": ..., "message": ...}``. A stream whose model cannot be had (no
weights, a broken checkpoint, params refused) fails its ``on_stream_start``, which the session reports as an
error event and in its status, and then runs on untranscribed; audio the resampler refuses fails that frame's
``process_audio_async`` the same way. Nothing here ends a session, nor touches another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from ...events import QUEUE_STREAM_EVENTS
from ...frames import AudioFrame
from ..base import FrameProcessor
from .model import SHARED_MODELS, LoadedModel, TranscriberError, Transcript, locate_weights, pick_device
from .options import TranscriberSettings, stream_options
from .windows import Captioner, Segment, Window

log = logging.getLogger(__name__)
# How long a stopping stream waits for the window being transcribed (below the runtime's 15 s hook timeout).
STOP_WAIT_S = 10.0


def transcript_record(seq: int, segment: Segment, language: str, model: str) -> dict[str, Any]:
    return {
        "type": "transcript",
        "seq": seq,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "language": language,
        "model": model,
    }


class WhisperProcessor(FrameProcessor):
    """Stream params: ``model``, ``language``, ``task``, ``window_s``, ``overlap_s``, ``max_tokens``,
    ``max_lag_s`` (``options.StreamOptions``); worker settings in ``options.TranscriberSettings``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = TranscriberSettings()
        self.device = pick_device(self.settings.device)
        self._models = SHARED_MODELS
        self._model: LoadedModel | None = None
        self._captioner: Captioner | None = None
        self._loading: asyncio.Task[None] | None = None
        self._transcribing: asyncio.Task[None] | None = None
        self._seq = 0

    async def load_model(self, **kwargs: Any) -> None:
        """Read the owner's settings (bad ones fail the pod) and load the default model, so the first stream
        need not wait. Missing or broken weights are only logged here: each stream that needs them says so."""
        self.settings = TranscriberSettings.model_validate(kwargs)
        stream_options(kwargs, self.settings)  # the streams' defaults: refused ones fail the pod, not every stream
        self.device = pick_device(self.settings.device)
        try:
            weights = locate_weights(self.settings, self.settings.model)
            await asyncio.wrap_future(self._models.get(weights, self.device))
        except TranscriberError as exc:
            log.warning("%s", exc)

    # -- a stream ---------------------------------------------------------------------------------------

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        await self.on_stream_stop()
        options = stream_options(params, self.settings)
        self._captioner = Captioner(options)
        self._seq = 0
        await self._use_model(options.model)

    async def update_params(self, params: dict[str, Any]) -> None:
        captioner = self._captioner
        if captioner is None:
            return
        options = stream_options({**captioner.options.model_dump(), **params}, self.settings)
        changed_model = options.model != captioner.options.model
        captioner.options = options
        if changed_model:
            await self._use_model(options.model)

    async def on_stream_stop(self) -> None:
        # The window being transcribed, then the audio after it (the stream's last words), are transcribed and
        # published (the session flushes the data channel after this hook), within a bound below the hook's
        # timeout; a load in progress is not waited for.
        deadline = asyncio.get_running_loop().time() + STOP_WAIT_S
        if self._transcribing is not None and not self._transcribing.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({self._transcribing}, timeout=STOP_WAIT_S)
        model, captioner = self._model, self._captioner
        window = captioner.final_window() if model is not None and captioner is not None else None
        if model is not None and captioner is not None and window is not None:
            left = deadline - asyncio.get_running_loop().time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(left, 0.0)):
                    await self._transcribe_window(model, captioner, window, final=True)
        for task in (self._loading, self._transcribing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._loading = self._transcribing = None
        self._captioner = None
        self._model = None

    async def process_audio_async(self, frame: AudioFrame) -> list[AudioFrame]:
        captioner = self._captioner
        if captioner is not None and (self._model is not None or self._loading is not None):
            captioner.audio.push(frame)  # AudioRefused: the session reports it and drops this frame
            self._schedule()
        return [frame]

    # -- the model --------------------------------------------------------------------------------------

    async def _use_model(self, name: str) -> None:
        """Switch to model ``name``: wait for it up to ``load_wait_s``, then let it finish in the background."""
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        self._model = None
        try:
            future = self._models.get(locate_weights(self.settings, name), self.device)
        except TranscriberError as exc:
            await self._state("failed", name, str(exc))
            raise
        if not future.done():
            await self._state("loading", name)
        loaded = asyncio.wrap_future(future)
        done, _ = await asyncio.wait({loaded}, timeout=self.settings.load_wait_s)
        if not done:
            self._loading = asyncio.create_task(self._finish_loading(loaded, name))
            return
        await self._ready(loaded, name, raise_failure=True)

    async def _finish_loading(self, loaded: asyncio.Future[LoadedModel], name: str) -> None:
        await asyncio.wait({loaded})
        self._loading = None
        await self._ready(loaded, name, raise_failure=False)

    async def _ready(self, loaded: asyncio.Future[LoadedModel], name: str, raise_failure: bool) -> None:
        try:
            model = loaded.result()
        except TranscriberError as exc:
            await self._state("failed", name, str(exc))
            if raise_failure:
                raise
            return
        self._model = model
        await self._state("ready", name)
        self._schedule()

    async def _state(self, state: str, model: str, message: str | None = None) -> None:
        event: dict[str, Any] = {"type": "transcriber", "state": state, "model": model, "device": str(self.device)}
        if message:
            event["message"] = message
        await self.send_monitoring_event(event, QUEUE_STREAM_EVENTS)

    # -- transcription ----------------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Start transcribing if a window is ready and nothing is being transcribed (one at a time per stream)."""
        if self._model is None or self._captioner is None:
            return
        if self._transcribing is not None and not self._transcribing.done():
            return
        window = self._captioner.next_window()
        if window is not None:
            self._transcribing = asyncio.create_task(self._transcribe(self._model, self._captioner, window))

    async def _transcribe(self, model: LoadedModel, captioner: Captioner, window: Window | None) -> None:
        while window is not None:
            if captioner.skipped_s:
                skipped, captioner.skipped_s = captioner.skipped_s, 0.0
                await self._state("behind", model.name, f"{skipped:.1f} s of audio skipped: transcription is slower")
            await self._transcribe_window(model, captioner, window)
            window = captioner.next_window() if self._model is model else None

    async def _transcribe_window(
        self, model: LoadedModel, captioner: Captioner, window: Window, final: bool = False
    ) -> None:
        """One window: transcribed on a thread, what it adds published in order (a failure is an event)."""
        try:
            call = functools.partial(model.transcribe, window, captioner.options, captioner.prompt)
            transcript: Transcript = await asyncio.get_running_loop().run_in_executor(model.executor, call)
        except Exception as exc:
            log.exception("whisper transcription failed")
            await self._state("error", model.name, f"transcription failed: {type(exc).__name__}: {exc}"[:300])
            captioner.skip(window)
            return
        for segment in captioner.accept(window, transcript.segments, final=final):
            await self.send_data(transcript_record(self._seq, segment, transcript.language, model.name))
            self._seq += 1
