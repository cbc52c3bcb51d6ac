"""``whisper`` end to end on a real trickle server: audio and video published into a stream, a worker running
the processor on a generated checkpoint (random weights, loaded through ``whisper.load_model``), transcript
records read back from the data channel in pytrickle's format, and the output video compared with the input.
Then the failures: a stream whose model has no weights and one whose checkpoint is broken are told so on their
events channel and run on untranscribed, while a third stream of the same pod (audio only) is transcribed."""

from __future__ import annotations

import asyncio
import io
import itertools
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from byoc_runtime.processors.speech.testmodel import MINI, write_random_checkpoint

from .support import Stream, decode_segments, publish, running_worker

pytestmark = pytest.mark.trickle

START_S = 3.0  # the input's first presentation time: transcripts are on this clock
FAST = {"window_s": 2, "overlap_s": 0.5, "max_tokens": 8}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_random_checkpoint(folder / "mini.pt", MINI)
    (folder / "broken.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    return folder


def records(stream: Stream) -> list[dict[str, Any]]:
    assert all(isinstance(batch, list) for batch in stream.data), stream.data  # pytrickle: one array a line
    return [item for batch in stream.data for item in batch]


def input_frames(segments: list[bytes]) -> dict[float, np.ndarray]:
    frames = {}
    for data in segments:
        with av.open(io.BytesIO(data), format="mpegts") as container:
            for frame in container.decode(video=0):
                frames[round(float(frame.time), 3)] = frame.to_ndarray(format="rgb24")
    return frames


async def run(rt: Any, stream: Stream, segments: list[bytes], params: dict[str, Any]) -> None:
    stream.listen()
    status, body = await rt.post("/stream/start", json=stream.start_body(params), headers={"X-Stream-Id": stream.sid})
    assert status == 200, body
    await publish(stream.url(), segments)
    await stream.wait_ended(60)
    await asyncio.sleep(0.3)
    await stream.close()


async def test_transcripts_arrive_in_order_on_the_stream_clock_and_video_passes_untouched(
    trickle_server, make_segments, model_dir: Path
) -> None:
    segments = make_segments(seconds=8, width=160, height=120, fps=15, start_seconds=START_S)
    settings = {"model": "mini", "model_dir": str(model_dir)}
    async with running_worker("whisper", params=settings) as rt:
        await rt.wait_health("IDLE", 60)
        stream = Stream.create(trickle_server)
        await run(rt, stream, segments, FAST)

    got = records(stream)
    assert len(got) >= 2, (got, stream.events)
    assert [r["seq"] for r in got] == list(range(len(got)))
    for r in got:
        assert set(r) == {"type", "seq", "start", "end", "text", "language", "model"}
        assert r["type"] == "transcript" and r["model"] == "mini" and r["text"] and isinstance(r["language"], str)
        assert START_S <= r["start"] < r["end"] <= START_S + 8.0
    assert all(b["start"] >= a["end"] for a, b in itertools.pairwise(got))  # no audio published twice
    states = [e["event"]["state"] for e in stream.events if e["event"].get("type") == "transcriber"]
    assert states == ["ready"]

    # Video: the decoded input frames re-encoded as they were (no scaling to the 512x512 default, no tensors).
    sent = input_frames(segments)
    out = decode_segments(stream.output)
    assert len(out.video) >= 0.9 * len(sent)
    assert {img.shape for _, img in out.video} == {(120, 160, 3)}
    for t, image in out.video:
        original = sent[round(t, 3)]  # the same timestamps
        mse = np.mean((image.astype(np.float32) - original.astype(np.float32)) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30, f"frame at {t} differs from the input"
    assert out.audio_codecs == {"opus"} and out.audio  # audio passes through


async def test_missing_or_broken_weights_are_reported_to_their_stream_only(
    trickle_server, make_segments, model_dir: Path
) -> None:
    video = make_segments(seconds=5, width=128, height=96, fps=15)
    audio_only = make_segments(seconds=6, video=False, start_seconds=START_S)
    settings = {"model": "mini", "model_dir": str(model_dir), "allowed_models": "missing broken"}
    async with running_worker("whisper", capacity=3, params=settings) as rt:
        await rt.wait_health("IDLE", 60)
        good, missing, broken = (Stream.create(trickle_server) for _ in range(3))
        await asyncio.gather(
            run(rt, good, audio_only, FAST),
            run(rt, missing, video, {**FAST, "model": "missing"}),
            run(rt, broken, video, {**FAST, "model": "broken"}),
        )
        assert (await rt.get("/health"))[1]["status"] == "IDLE"

    assert records(good) and all(r["start"] >= START_S for r in records(good))  # a stream with no video works
    assert not good.output or decode_segments(good.output).video == []
    for stream, reason in (
        (missing, f"no weights for whisper model 'missing': {model_dir}/missing.pt is not a file"),
        (broken, f"whisper checkpoint {model_dir}/broken.pt could not be loaded"),
    ):
        assert not records(stream)
        states = [e["event"] for e in stream.events if e["event"].get("type") == "transcriber"]
        assert [s["state"] for s in states][-1:] == ["failed"] and reason in states[-1]["message"]
        errors = [e["event"]["message"] for e in stream.events if e["event"].get("type") == "error"]
        assert any(reason in m for m in errors), errors
        running = [e["event"] for e in stream.events if e["event"].get("state") == "RUNNING"]
        assert running and reason in running[0]["inference_status"]["last_error"]  # the gateway's /status
        assert len(decode_segments(stream.output).video) >= 60  # the stream ran on
        assert stream.stop_reasons() == ["input ended"]  # not a failure
