"""The ``whisper`` processor's parts on their own: options, the 16 kHz buffer, the window/commit rules, token
parsing with whisper's real tokenizer, where weights are looked for, loading (one instance per checkpoint), and
two sessions of one pod sharing a model while one of them gets audio the resampler refuses."""

from __future__ import annotations

import asyncio
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
import whisper
from byoc_runtime.frames import AudioFrame
from byoc_runtime.processors.speech.audio import SAMPLE_RATE, AudioBuffer, AudioRefused
from byoc_runtime.processors.speech.model import (
    SHARED_MODELS,
    CheckpointBroken,
    WeightsMissing,
    locate_weights,
    segments_from_tokens,
)
from byoc_runtime.processors.speech.options import OptionsRefused, TranscriberSettings, stream_options
from byoc_runtime.processors.speech.processor import WhisperProcessor
from byoc_runtime.processors.speech.testmodel import MINI, write_random_checkpoint
from byoc_runtime.processors.speech.windows import Captioner, Segment, Window
from byoc_testenv.polling import eventually


def audio_frame(t: float, n: int = 960, rate: int = 48_000, hz: float = 300.0) -> AudioFrame:
    """A stereo fltp frame starting at stream time ``t``."""
    times = t + np.arange(n) / max(rate, 1)
    wave = (0.3 * np.sin(2 * np.pi * hz * times)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = rate
    frame.time_base = Fraction(1, 90_000)
    frame.pts = round(t * 90_000)
    return AudioFrame(frame)


def options(**params: Any):
    return stream_options(params, TranscriberSettings())


@pytest.fixture(scope="module")
def mini_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("whisper") / "mini.pt", MINI)


# --- options -------------------------------------------------------------------------------------------------


def test_stream_options_take_the_owners_defaults_and_refuse_what_it_does_not_offer() -> None:
    settings = TranscriberSettings(model="tiny", allowed_models="base, small", model_dir="/m")
    opts = stream_options({"language": "English", "window_s": "4", "model_dir": "/etc", "width": 64}, settings)
    assert (opts.model, opts.language, opts.window_s) == ("tiny", "en", 4.0)
    assert stream_options({"model": "small"}, settings).model == "small"
    with pytest.raises(OptionsRefused, match="'large' is not offered by this worker"):
        stream_options({"model": "large"}, settings)
    with pytest.raises(OptionsRefused, match="model"):
        stream_options({"model": "../../etc/passwd"}, settings)
    with pytest.raises(OptionsRefused, match="unknown language 'klingon'"):
        stream_options({"language": "klingon"}, settings)
    with pytest.raises(OptionsRefused, match="overlap_s"):
        stream_options({"window_s": 2, "overlap_s": 1.5}, settings)
    assert stream_options({"language": "auto"}, settings).language is None


# --- the 16 kHz buffer -----------------------------------------------------------------------------------------


def test_buffer_resamples_to_16k_mono_on_the_stream_clock_and_fills_small_gaps() -> None:
    buffer = AudioBuffer()
    for i in range(50):  # 1 s of 20 ms frames from t=7
        buffer.push(audio_frame(7.0 + i * 0.02))
    assert buffer.start == pytest.approx(7.0)
    assert buffer.seconds == pytest.approx(1.0, abs=0.01)
    # FFmpeg's stereo downmix: each channel at -3 dB
    assert buffer.samples.dtype == np.float32
    assert np.abs(buffer.samples).max() == pytest.approx(0.3 * 2 * 0.7071, abs=0.01)
    buffer.push(audio_frame(8.5))  # 0.5 s missing: silence keeps the clock
    assert buffer.end == pytest.approx(8.52, abs=0.01)
    buffer.push(audio_frame(100.0))  # the clock jumped: start again there
    assert buffer.start == pytest.approx(100.0) and buffer.seconds < 0.05
    buffer.drop_until(100.01)
    assert buffer.start == pytest.approx(100.01, abs=1e-3)


@pytest.mark.parametrize("rate", [0, 48])
def test_audio_the_resampler_refuses_is_an_error_and_the_buffer_goes_on(rate: int) -> None:
    buffer = AudioBuffer()
    buffer.push(audio_frame(0.0))
    with pytest.raises(AudioRefused, match=f"at {rate} Hz"):
        buffer.push(audio_frame(0.02, rate=rate))
    buffer.push(audio_frame(0.02))
    assert buffer.seconds == pytest.approx(0.04, abs=0.005)


# --- windows and what is published ---------------------------------------------------------------------------


def window(start: float, seconds: float) -> Window:
    return Window(start, np.zeros(round(seconds * SAMPLE_RATE), np.float32))


def fill(captioner: Captioner, start: float, seconds: float) -> None:
    for i in range(round(seconds / 0.02)):
        captioner.audio.push(audio_frame(start + i * 0.02))


def test_segments_before_the_overlap_are_published_once_and_the_next_window_starts_after_them() -> None:
    captioner = Captioner(options(window_s=5, overlap_s=1))
    fill(captioner, 10.0, 4.9)
    assert captioner.next_window() is None  # not a whole window yet
    fill(captioner, 14.9, 3.0)
    first = captioner.next_window()
    assert first is not None and (first.start, first.seconds) == (pytest.approx(10.0), pytest.approx(5.0))
    said = [Segment(10.2, 12.0, "one"), Segment(12.0, 14.2, "two"), Segment(14.3, 15.0, "thr")]
    assert captioner.accept(first, said) == said[:2]  # "thr" starts in the last second: heard again next time
    second = captioner.next_window()
    assert second is None  # 14.2 .. 17.9 buffered: under a window
    fill(captioner, 17.9, 1.4)
    second = captioner.next_window()
    assert second is not None and second.start == pytest.approx(14.2, abs=0.01)
    # whisper echoes the last published text at the seam: dropped; a segment over the horizon is taken whole
    again = [Segment(14.2, 14.3, "Two."), Segment(14.3, 19.2, "three four")]
    assert captioner.accept(second, again) == [again[1]]
    assert captioner.audio.start == pytest.approx(19.2, abs=0.01)
    assert "three four" in captioner.prompt and "one" in captioner.prompt


def test_a_silent_window_moves_on_to_its_overlap_and_a_slow_model_skips_to_the_newest_window() -> None:
    captioner = Captioner(options(window_s=4, overlap_s=1, max_lag_s=8))
    fill(captioner, 0.0, 5.0)
    first = captioner.next_window()
    assert first is not None and captioner.accept(first, []) == []
    assert captioner.audio.start == pytest.approx(3.0, abs=0.01)
    fill(captioner, 5.0, 8.0)  # 10 s waiting: over max_lag_s
    late = captioner.next_window()
    assert late is not None and late.start == pytest.approx(9.0, abs=0.02)
    assert captioner.skipped_s == pytest.approx(6.0, abs=0.02)


def test_tokens_split_at_whisper_timestamps_onto_the_stream_clock() -> None:
    tokenizer = whisper.tokenizer.get_tokenizer(True, num_languages=99, language="en")
    ts = tokenizer.timestamp_begin
    tokens = [ts + 10, *tokenizer.encode(" hello there"), ts + 60, ts + 60, *tokenizer.encode(" again"), ts + 100]
    tokens += [*tokenizer.encode(" cut off")]
    segments = segments_from_tokens(tokens, tokenizer, window(30.0, 3.0))
    assert segments == [
        Segment(30.2, 31.2, "hello there"),
        Segment(31.2, 32.0, "again"),
        Segment(32.0, 33.0, "cut off"),  # no closing timestamp: to the window's end
    ]


# --- weights and loading -------------------------------------------------------------------------------------


def test_missing_weights_say_where_they_were_looked_for(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing, match=re.escape(f"{tmp_path}/tiny.pt is not a file; put the checkpoint there")):
        locate_weights(TranscriberSettings(model_dir=tmp_path), "tiny")
    with pytest.raises(WeightsMissing, match=r"large-v3-turbo\.pt"):  # whisper's own file name for turbo
        locate_weights(TranscriberSettings(model_dir=tmp_path, model="turbo"), "turbo")
    weights = locate_weights(TranscriberSettings(model_dir=tmp_path, download=True), "tiny")
    assert weights.path is None and weights.download_root == tmp_path  # whisper's download, into the cache


def test_a_generated_checkpoint_is_the_same_whatever_memory_held_before(tmp_path: Path) -> None:
    # whisper allocates one weight with torch.empty; a checkpoint holding leftover memory made the stream tests'
    # transcripts (and whether there were any) depend on what ran before them.
    first = torch.load(write_random_checkpoint(tmp_path / "a.pt", MINI))["model_state_dict"]
    litter = [torch.full((MINI["n_text_ctx"], MINI["n_text_state"]), 1e30) for _ in range(64)]
    del litter
    second = torch.load(write_random_checkpoint(tmp_path / "b.pt", MINI))["model_state_dict"]
    assert first.keys() == second.keys()
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    assert all(torch.isfinite(v).all() for v in first.values() if v.is_floating_point())


async def test_a_broken_checkpoint_fails_to_load_with_a_reason_and_is_retried(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    weights = locate_weights(TranscriberSettings(model="broken", model_dir=tmp_path), "broken")
    first = SHARED_MODELS.get(weights, __import__("torch").device("cpu"))
    with pytest.raises(CheckpointBroken, match=f"{broken} could not be loaded"):
        await asyncio.wrap_future(first)
    assert SHARED_MODELS.get(weights, __import__("torch").device("cpu")) is not first


async def test_sessions_of_a_pod_share_one_model_and_a_refused_frame_touches_only_its_own(
    mini_checkpoint: Path,
) -> None:
    settings = {"model": "mini", "model_dir": str(mini_checkpoint.parent)}
    processors = [WhisperProcessor(), WhisperProcessor()]
    data: list[list[Any]] = [[], []]
    for p, sink in zip(processors, data, strict=True):
        await p.load_model(**settings)
        p.attach_data_sink(sink.append)
        p.attach_event_sink(lambda event, queue: None)
        await p.on_stream_start({**settings, "window_s": 2, "overlap_s": 0.5, "max_tokens": 8})
    model = processors[0]._model
    assert model is processors[1]._model is not None  # one instance for the pod
    # Which stream each finished transcription of the shared model was for (random weights may say nothing
    # publishable in a window, so records alone cannot show that both streams were transcribed).
    done: list[Any] = []
    real_transcribe = model.transcribe

    def transcribe(window: Any, options: Any, prompt: str = "") -> Any:
        result = real_transcribe(window, options, prompt)
        done.append(options)
        return result

    model.transcribe = transcribe  # type: ignore[method-assign]
    for i in range(int(4.2 / 0.02)):
        frame = audio_frame(5.0 + i * 0.02)
        for p in processors:
            if p is processors[1] and i == 10:
                with pytest.raises(AudioRefused):
                    await p.process_audio_async(audio_frame(5.0 + i * 0.02, rate=0))
            assert await p.process_audio_async(frame) == [frame]  # audio passes through
    try:

        def both_transcribed() -> bool:
            return all(any(o is p._captioner.options for o in done) for p in processors if p._captioner)

        await eventually(both_transcribed, 180, "a transcription of each stream", interval=0.05)
        for records in data:
            assert all(r["type"] == "transcript" and r["start"] >= 5.0 for r in records)
            assert [r["seq"] for r in records] == list(range(len(records)))
    finally:
        model.transcribe = real_transcribe  # type: ignore[method-assign]
        for p in processors:
            await p.on_stream_stop()


def test_only_an_echo_at_the_seam_is_dropped_not_a_phrase_said_again() -> None:
    captioner = Captioner(options(window_s=4, overlap_s=1))
    fill(captioner, 0.0, 8.0)
    first = captioner.next_window()
    assert first is not None
    said = [Segment(0.0, 1.0, "Yes."), Segment(1.5, 2.5, "yes")]
    assert captioner.accept(first, said) == said
    second = captioner.next_window()
    assert second is not None and second.start == pytest.approx(2.5, abs=0.01)
    assert captioner.accept(second, [Segment(2.5, 2.9, "yes!"), Segment(3.2, 4.0, "yes")]) == [Segment(3.2, 4.0, "yes")]


async def test_params_change_mid_stream_and_refused_ones_leave_the_stream_as_it_was(mini_checkpoint: Path) -> None:
    settings = {"model": "mini", "model_dir": str(mini_checkpoint.parent)}
    p = WhisperProcessor()
    await p.load_model(**settings)
    await p.on_stream_start({**settings, "language": "en"})
    await p.update_params({"language": "de", "window_s": 3})
    assert p._captioner is not None
    assert (p._captioner.options.language, p._captioner.options.window_s) == ("de", 3.0)
    with pytest.raises(OptionsRefused, match="'tiny' is not offered"):
        await p.update_params({"model": "tiny"})
    assert p._captioner.options.model == "mini" and p._model is not None
    await p.on_stream_stop()
    with pytest.raises(OptionsRefused, match="unknown language"):
        await WhisperProcessor().load_model(**settings, language="klingon")  # bad defaults fail the pod


def test_the_last_words_of_a_stream_are_one_final_window_heard_whole() -> None:
    captioner = Captioner(options(window_s=4, overlap_s=1))
    fill(captioner, 20.0, 2.5)
    assert captioner.next_window() is None  # shorter than a window: only the stream's end transcribes it
    final = captioner.final_window()
    assert final is not None and final.start == pytest.approx(20.0) and final.seconds == pytest.approx(2.5)
    # A segment in the last overlap_s would wait for a next window; the final one has none, so it is published.
    said = [Segment(20.2, 21.0, "last"), Segment(21.8, 22.4, "words")]
    assert captioner.accept(final, said, final=True) == said
    assert captioner.final_window() is None  # nothing left
    empty = Captioner(options(window_s=4, overlap_s=1))
    fill(empty, 0.0, 0.2)
    assert empty.final_window() is None  # too short to be worth an encoder pass


async def test_stopping_a_stream_transcribes_the_audio_after_its_last_window(mini_checkpoint: Path) -> None:
    settings = {"model": "mini", "model_dir": str(mini_checkpoint.parent)}
    p = WhisperProcessor()
    await p.load_model(**settings)
    p.attach_data_sink(lambda item: None)
    p.attach_event_sink(lambda event, queue: None)
    await p.on_stream_start({**settings, "window_s": 4, "overlap_s": 0.5, "max_tokens": 8})
    model = p._model
    assert model is not None
    heard: list[float] = []
    real_transcribe = model.transcribe

    def transcribe(window: Any, options: Any, prompt: str = "") -> Any:
        heard.append(window.seconds)
        return real_transcribe(window, options, prompt)

    model.transcribe = transcribe  # type: ignore[method-assign]
    try:
        for i in range(int(1.5 / 0.02)):
            await p.process_audio_async(audio_frame(3.0 + i * 0.02))
        assert heard == []  # less than a window: nothing transcribed while the stream runs
        await p.on_stream_stop()
        assert heard == [pytest.approx(1.5, abs=0.05)]
    finally:
        model.transcribe = real_transcribe  # type: ignore[method-assign]
