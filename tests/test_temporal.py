"""Synthetic motion for the training-time temporal loss (realtime_nst.training.temporal)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from realtime_nst.training.temporal import moved_view, random_motion, temporal_loss, warp  # noqa: E402


def _shift(n, h, w, dx_px, dy_px):
    theta = torch.tensor([[1.0, 0.0, -2 * dx_px / w], [0.0, 1.0, -2 * dy_px / h]])
    return theta.expand(n, 2, 3).clone()


def test_warp_moves_by_whole_pixels_and_masks_what_came_from_outside():
    x = torch.rand(2, 3, 20, 30)
    moved, mask = warp(x, _shift(2, 20, 30, 2, 1))  # content moves 2 px right, 1 px down
    assert torch.allclose(moved[..., 1:, 2:], x[..., :-1, :-2], atol=1e-5)
    assert mask[..., :, :2].sum() == 0 and mask[..., :1, :].sum() == 0  # brought in from outside
    assert mask[..., 3:-3, 4:-3].min() == 1


def test_an_equivariant_net_has_no_temporal_loss_and_a_position_dependent_one_has():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 48, generator=g)
    theta = _shift(3, 32, 48, 2, -1)
    x_moved, mask = warp(x, theta)
    assert temporal_loss(x * 0.5, x_moved * 0.5, theta, mask) < 1e-5  # a pointwise net: moved output = output of moved
    pattern = torch.rand(1, 3, 32, 48, generator=g)  # a texture painted at fixed positions: flickers under motion
    assert temporal_loss(x + pattern, x_moved + pattern, theta, mask) > 0.1


def test_l2_weighs_a_few_large_jumps_above_many_small_changes():
    """The flicker metric (E_warp) is a mean square: l2 ranks two outputs as it does, l1 the other way."""
    x = torch.full((1, 3, 32, 48), 0.5)
    theta = _shift(1, 32, 48, 1, 0)
    x_moved, mask = warp(x, theta)
    spread = x_moved + 0.02  # every pixel a little off
    edge = x_moved.clone()
    edge[..., 10:12, 10:40] += 0.4  # two rows far off
    l1 = [temporal_loss(x, y, theta, mask) for y in (spread, edge)]
    l2 = [temporal_loss(x, y, theta, mask, norm="l2") for y in (spread, edge)]
    assert l1[0] > l1[1] and l2[0] < l2[1]
    torch.testing.assert_close(l2[0], torch.tensor(0.02 ** 2), rtol=1e-3, atol=0)


def test_changes_beyond_white_or_black_are_not_flicker():
    x = torch.rand(1, 3, 32, 48)
    theta = _shift(1, 32, 48, 1, 0)
    x_moved, mask = warp(x, theta)
    white = torch.full_like(x, 1.2)
    assert temporal_loss(white, white + torch.rand_like(x), theta, mask) == 0  # clamped: both show white
    assert temporal_loss(white, white - 0.5, theta, mask) > 0.2  # 0.7 is visible against white


def test_random_motion_is_small_and_reproducible():
    a = random_motion(64, 256, 256, generator=torch.Generator().manual_seed(3))
    b = random_motion(64, 256, 256, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    shift_px = a[:, :, 2].abs() * 128
    assert shift_px.max() <= 3.0 + 1e-4 and shift_px.max() > 1.0
    assert (a[:, :, :2] - torch.eye(2)).abs().max() < 0.06  # <= 1.5 degrees and 3% zoom
    x = torch.rand(2, 3, 40, 40)
    moved, theta, mask = moved_view(x, generator=torch.Generator().manual_seed(1))
    assert moved.shape == x.shape and 0 <= moved.min() and moved.max() <= 1 and mask.mean() > 0.7
