"""Scale-and-crop planning (pure)."""

from __future__ import annotations

import pytest
from byoc_runtime.media.geometry import plan_scale_crop
from hypothesis import given
from hypothesis import strategies as st


def test_same_size_needs_nothing() -> None:
    plan = plan_scale_crop(512, 512, 512, 512)
    assert (plan.scale_width, plan.scale_height, plan.crop_x, plan.crop_y) == (512, 512, 0, 0)
    assert not plan.needs_crop


def test_wide_source_matches_height_and_crops_sides() -> None:
    plan = plan_scale_crop(1280, 720, 512, 512)
    assert (plan.scale_width, plan.scale_height) == (910, 512)
    assert (plan.crop_x, plan.crop_y) == (455 - 256, 0)


def test_tall_source_matches_width_and_crops_top_and_bottom() -> None:
    plan = plan_scale_crop(720, 1280, 512, 512)
    assert (plan.scale_width, plan.scale_height) == (512, 910)
    assert (plan.crop_x, plan.crop_y) == (0, 199)


def test_matches_pytrickle_for_its_common_case() -> None:
    # pytrickle decoder.py: w = int((th * fw / fh) / 2) * 2 when the target is narrower.
    plan = plan_scale_crop(640, 480, 704, 384)
    assert plan.scale_width == 704 and plan.scale_height == int((704 * 480 / 640) / 2) * 2


def test_rejects_empty_sizes() -> None:
    with pytest.raises(ValueError):
        plan_scale_crop(0, 480, 512, 512)


@given(st.integers(16, 4096), st.integers(16, 4096), st.integers(16, 1024), st.integers(16, 1024))
def test_crop_window_always_fits_and_keeps_aspect(sw: int, sh: int, w: int, h: int) -> None:
    plan = plan_scale_crop(sw, sh, w, h)
    assert plan.scale_width >= w and plan.scale_height >= h
    assert 0 <= plan.crop_x <= plan.scale_width - w
    assert 0 <= plan.crop_y <= plan.scale_height - h
    if (sw, sh) != (w, h):
        # One side matches the target exactly; the other keeps the aspect ratio (to within rounding to even).
        assert plan.scale_width == w or plan.scale_height == h
        if plan.scale_height == h:
            assert abs(plan.scale_width - h * sw / sh) <= 2 or plan.scale_width == w
        else:
            assert abs(plan.scale_height - w * sh / sw) <= 2 or plan.scale_height == h
