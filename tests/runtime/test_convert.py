"""Tensor layout and conversions between decoded frames, images and processor tensors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from byoc_runtime.media.convert import rgb_to_tensor, rgb_to_video_frame, tensor_to_rgb, video_frame_to_rgb


def _frame(width: int, height: int) -> av.VideoFrame:
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (255, 0, 0)  # left half red
    rgb[:, width // 2 :] = (0, 0, 255)  # right half blue
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def test_decoded_frame_becomes_target_size_rgb() -> None:
    rgb = video_frame_to_rgb(_frame(1280, 720), 512, 512)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    # Centre crop keeps the red/blue split in the middle.
    assert rgb[256, 100, 0] > 200 and rgb[256, 100, 2] < 60
    assert rgb[256, 400, 2] > 200 and rgb[256, 400, 0] < 60


def test_tensor_layout_is_pytrickles() -> None:
    rgb = video_frame_to_rgb(_frame(320, 240), 128, 96)
    tensor = rgb_to_tensor(rgb)
    assert tensor.shape == (1, 96, 128, 3)
    assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    assert torch.allclose(tensor[0, 10, 10], torch.from_numpy(rgb[10, 10]).float() / 255)


def test_round_trip_is_lossless() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(tensor_to_rgb(rgb_to_tensor(rgb)), rgb)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((1, 8, 8, 3), (8, 8, 3)), ((8, 8, 3), (8, 8, 3)), ((1, 8, 8, 1), (8, 8, 3)), ((1, 8, 8, 4), (8, 8, 3))],
)
def test_output_shapes_accepted(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert tensor_to_rgb(torch.rand(shape)).shape == expected


def test_grey_output_is_expanded_to_rgb() -> None:
    rgb = tensor_to_rgb(torch.full((1, 4, 4, 1), 0.5))
    assert np.all(rgb == 128)


def test_uint8_tensor_passes_unscaled_and_values_clamp() -> None:
    assert np.all(tensor_to_rgb(torch.full((4, 4, 3), 200, dtype=torch.uint8)) == 200)
    assert np.all(tensor_to_rgb(torch.full((4, 4, 3), 3.0)) == 255)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (8, 8), (1, 8, 8, 2)])
def test_bad_shapes_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        tensor_to_rgb(torch.rand(shape))


def test_cropped_view_converts_to_a_frame() -> None:
    rgb = video_frame_to_rgb(_frame(640, 360), 128, 128)
    assert not rgb.flags.c_contiguous  # a view into the scaled image, no copy made
    frame = rgb_to_video_frame(rgb)
    assert (frame.width, frame.height) == (128, 128)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU test: needs CUDA (only GPU tests skip)")
def test_tensor_on_gpu() -> None:
    rgb = np.full((8, 8, 3), 51, np.uint8)
    tensor = rgb_to_tensor(rgb, "cuda")
    assert tensor.device.type == "cuda" and tensor.shape == (1, 8, 8, 3)
    assert np.array_equal(tensor_to_rgb(tensor), rgb)
