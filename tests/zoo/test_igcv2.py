"""IGCV2's two checkable claims: the block is a dense kernel (complementary condition), and the
reconstruction's width multipliers cost what ShuffleNet V2's Table 8 quotes for IGCV2-1.0/0.5/0.25."""

from __future__ import annotations

import pytest
import torch

from zooserve.zoo.families._group_conv import igc_v2
from zooserve.zoo.families.igc import IGCV2Net
from zooserve.zoo.measure import count_macs


@pytest.mark.parametrize(("in_channels", "out_channels", "groups"), [(12, 12, 3), (12, 24, 3), (16, 16, 4)])
def test_igcv2_block_meets_the_complementary_condition(in_channels, out_channels, groups):
    """With every weight 1, an impulse on input channel i reaches output channel o once per path: the
    complementary condition says exactly one path links every (o, i) pair."""
    block = igc_v2(in_channels, out_channels, groups)
    for conv in block.modules():
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.ones_(conv.weight)
    impulses = torch.zeros(in_channels, in_channels, 3, 3)
    impulses[range(in_channels), range(in_channels), 1, 1] = 1  # image i: channel i, centre pixel
    with torch.no_grad():
        paths = block(impulses)[:, :, 1, 1]  # (input channel, output channel), centre pixel
    assert torch.equal(paths, torch.ones(in_channels, out_channels))


@pytest.mark.parametrize(("multiplier", "published"), [(1.0, 564e6), (0.5, 156e6), (0.25, 46e6)])
def test_igcv2_width_multipliers_cost_the_published_mult_adds(multiplier, published):
    """The layout was fitted to all three figures of ShuffleNet V2 (arXiv 1807.11164) Table 8, not one."""
    with torch.device("meta"):
        model = IGCV2Net(width_multiplier=5 / 3 * multiplier, groups=3)
    assert abs(count_macs(model, (3, 224, 224)) / published - 1) <= 0.05
