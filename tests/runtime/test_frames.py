"""VideoFrame/AudioFrame behave like pytrickle's (frames.py v0.1.6)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from byoc_runtime.frames import AudioFrame, FrameOrigin, VideoFrame, VideoOutput, is_video_frame
from byoc_runtime.media.convert import tensor_to_rgb
from byoc_runtime.session.items import DecodedPicture
from byoc_runtime.session.processing import normalize_video_result


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


class _Counting:
    """A pending tensor that counts how often it is made."""

    def __init__(self) -> None:
        self.made = 0

    def make_tensor(self, frame: VideoFrame) -> torch.Tensor:
        self.made += 1
        return torch.full((1, 2, 2, 3), 0.5)


def test_a_deferred_frame_makes_its_tensor_once_when_read() -> None:
    pending = _Counting()
    frame = VideoFrame.deferred(pending, 3000, Fraction(1, 90000))
    assert frame.pending is pending and pending.made == 0 and frame.time == 1 / 30
    assert torch.equal(frame.tensor, torch.full((1, 2, 2, 3), 0.5)) and frame.tensor is frame.tensor
    assert pending.made == 1 and frame.pending is None
    assigned = VideoFrame.deferred(_Counting(), 0, Fraction(1, 30))
    assigned.tensor = torch.zeros(1, 2, 2, 3)  # set without reading: nothing made, no longer pending
    assert assigned.pending is None and not assigned.tensor.any()


def test_a_frame_handed_back_unread_stays_unread_through_the_result_check() -> None:
    """A passthrough processor returns the frame it got: checking that result must not make the tensor (it
    did, on the event loop: 17 % of a passthrough worker's samples under py-spy)."""
    pending = _Counting()
    frame = VideoFrame.deferred(pending, 0, Fraction(1, 30))
    assert is_video_frame(frame) and normalize_video_result(frame, frame) is frame
    assert pending.made == 0 and frame.pending is pending


@pytest.mark.parametrize("size", [(64, 48), (32, 32)])  # same aspect (no crop) and a centre crop
def test_an_unread_picture_encodes_as_its_tensor_would(size: tuple[int, int]) -> None:
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:, :64] = (200, 30, 30)
    rgb[:, 64:] = (30, 30, 200)
    decoded = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    decoded.pts, decoded.time_base = 0, Fraction(1, 90000)
    picture = DecodedPicture(decoded, *size, "BILINEAR", None)
    unread = picture.picture().to_ndarray(format="rgb24").astype(int)
    frame = VideoFrame.deferred(picture, 0, Fraction(1, 90000))
    via_tensor = tensor_to_rgb(frame.tensor).astype(int)
    assert frame.origin is not None and frame.origin.matches(frame.tensor) and picture.convert_s > 0
    assert unread.shape == via_tensor.shape == (size[1], size[0], 3)
    assert np.abs(unread - via_tensor).mean() < 3  # one yuv420p rounding apart


def test_a_tensor_first_read_in_inference_mode_is_an_ordinary_tensor() -> None:
    """Processors read the tensor inside ``torch.inference_mode()`` (the cartoon net does): it must still keep
    its version counter, so an unmodified tensor is recognised and an edited one is not."""
    decoded = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    decoded.pts, decoded.time_base = 0, Fraction(1, 90000)
    frame = VideoFrame.deferred(DecodedPicture(decoded, 64, 48, "BILINEAR", None), 0, Fraction(1, 90000))
    with torch.inference_mode():
        tensor = frame.tensor
    assert not tensor.is_inference() and frame.origin is not None and frame.origin.matches(tensor)
    tensor.add_(0.1)
    assert not frame.origin.matches(tensor)
