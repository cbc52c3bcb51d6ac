"""VideoFrame/AudioFrame behave like pytrickle's (frames.py v0.1.6)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import torch
from byoc_runtime.frames import AudioFrame, FrameOrigin, VideoFrame, VideoOutput


def test_replace_tensor_keeps_timing_and_side_data() -> None:
    frame = VideoFrame(torch.zeros(1, 4, 4, 3), 9000, Fraction(1, 90000), {"frame_init": 1.0})
    frame.side_data.input = "x"
    new = frame.replace_tensor(torch.ones(1, 4, 4, 3))
    assert (new.timestamp, new.time_base) == (9000, Fraction(1, 90000))
    assert new.side_data is frame.side_data and new.log_timestamps == {"frame_init": 1.0}
    assert new.log_timestamps is not frame.log_timestamps
    assert torch.equal(new.tensor, torch.ones(1, 4, 4, 3))
    assert new.time == 0.1


def test_video_output_wraps_a_frame() -> None:
    frame = VideoFrame(torch.zeros(1, 2, 2, 3), 5, Fraction(1, 30))
    out = VideoOutput(frame, "req").replace_tensor(torch.ones(1, 2, 2, 3))
    assert out.timestamp == 5 and out.time_base == Fraction(1, 30) and out.request_id == "req"


def test_origin_tracks_in_place_edits() -> None:
    tensor = torch.zeros(1, 2, 2, 3)
    origin = FrameOrigin(tensor, tensor._version, np.zeros((2, 2, 3), np.uint8))
    assert origin.matches(tensor)
    assert not origin.matches(tensor.clone())
    tensor.add_(1)
    assert not origin.matches(tensor)


def _audio(format: str = "fltp", layout: str = "stereo", samples: int = 960) -> av.AudioFrame:
    planar = format.endswith("p")
    channels = av.AudioLayout(layout).nb_channels
    dtype = np.float32 if format.startswith("flt") else np.int16
    shape = (channels, samples) if planar else (1, samples * channels)
    frame = av.AudioFrame.from_ndarray(np.ones(shape, dtype), format=format, layout=layout)
    frame.sample_rate = 48000
    frame.pts = 480
    frame.time_base = Fraction(1, 48000)
    return frame


def test_audio_frame_from_av() -> None:
    frame = AudioFrame(_audio())
    assert frame.samples.shape == (2, 960) and frame.nb_samples == 960
    assert (frame.format, frame.layout, frame.rate, frame.timestamp) == ("fltp", "stereo", 48000, 480)
    assert frame.time == 0.01


def test_audio_round_trip_planar_and_packed() -> None:
    for fmt in ("fltp", "s16"):
        frame = AudioFrame(_audio(fmt))
        back = frame.replace_samples(frame.samples * 0).to_av_frame()
        assert back.samples == 960 and back.format.name == fmt and back.pts == 480
        assert not back.to_ndarray().any()


def test_audio_packed_channels_last_is_accepted() -> None:
    frame = AudioFrame(_audio("s16"))
    channels_last = np.zeros((960, 2), np.int16)
    back = frame.replace_samples(channels_last)
    assert back.nb_samples == 960
    assert back.to_av_frame().samples == 960


def test_audio_from_tensor() -> None:
    frame = AudioFrame.from_tensor(torch.zeros(2, 480), format="s16", layout="stereo")
    assert frame.nb_samples == 480
    assert frame.to_av_frame().samples == 480
