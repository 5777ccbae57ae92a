"""Interleaved group convolutions: products of group convolutions joined by channel permutations.

Shared by IGCV1 (Zhang et al., "Interleaved Group Convolutions", ICCV 2017, arXiv 1707.02725) and IGCV2
(Xie et al., "IGCV2: Interleaved Structured Sparse Convolutional Neural Networks", CVPR 2018,
arXiv 1804.06202). Both write one convolution as y = P_L W_L ... P_2 W_2 P_1 W_1 x: each W_l is a group
convolution (a block-sparse kernel) and each P_l interleaves the channels so that the next group
convolution sees one channel of every group of the previous one.

The permutation is the ``Reorder`` op of the IGCV1 reference code (view channels as (groups, C/groups),
transpose, flatten): exactly a channel shuffle, so PyTorch's ``nn.ChannelShuffle`` is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def interleave(groups: int, channels: int) -> nn.Module:
    """P after a convolution with ``groups`` groups: partition j of the next conv gets channel j of each group."""
    # with one group, or one channel per group (a channel-wise conv), the shuffle is the identity
    return nn.Identity() if groups in (1, channels) else nn.ChannelShuffle(groups)


def group_conv(
    in_channels: int, out_channels: int, kernel_size: int, groups: int, stride: int = 1
) -> nn.Conv2d:
    """A bias-free group convolution with 'same' padding (every conv of the IGC family has this form)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=False
    )


class InterleavedGroupConv(nn.Sequential):
    """W_1, P_1, W_2, ..., W_L, then the inverse of the last interleaving so channels come back in W_1's order.

    The reference IGCV1 code permutes back after the secondary convolution (``Reorder`` with the
    complementary branch factor); here that is the shuffle with C/groups groups, the inverse of the
    shuffle with ``groups``. No normalization or activation sits between the convolutions: the block
    stands for one (dense) convolution kernel, followed outside by BN and ReLU.
    """

    def __init__(self, convs: Sequence[nn.Conv2d]):
        layers: list[nn.Module] = [convs[0]]
        last_groups, channels = 1, convs[0].out_channels
        for previous, conv in zip(convs, convs[1:]):
            layers += [interleave(previous.groups, previous.out_channels), conv]
            if previous.groups not in (1, previous.out_channels):
                last_groups, channels = previous.groups, previous.out_channels
        if last_groups > 1:
            if convs[-1].out_channels != channels:
                raise ValueError("the order can only be restored when the last conv keeps the channel count")
            layers.append(nn.ChannelShuffle(channels // last_groups))
        super().__init__(*layers)


def igc_v1(in_channels: int, out_channels: int, primary_groups: int, stride: int = 1) -> InterleavedGroupConv:
    """IGCV1: primary 3x3 group conv with L partitions, then secondary 1x1 group conv with M = C/L partitions.

    Each secondary partition holds one channel of each primary partition (the complementary condition),
    so the product is dense: every output channel depends on every input channel.
    """
    return InterleavedGroupConv(
        [
            group_conv(in_channels, out_channels, 3, primary_groups, stride),
            group_conv(out_channels, out_channels, 1, out_channels // primary_groups),
        ]
    )


def igc_v2(in_channels: int, out_channels: int, groups: int, stride: int = 1) -> InterleavedGroupConv:
    """IGCV2 with L = 3: channel-wise 3x3 conv W_1, then 1x1 group convs W_2 and W_3 that satisfy the
    complementary condition: W_2 has ``groups`` branches, so every branch of W_3 takes ``groups``
    channels, one from each W_2 branch (K_3 = G_2), and each output sees each input channel once.
    """
    return InterleavedGroupConv(
        [
            group_conv(in_channels, in_channels, 3, in_channels, stride),
            group_conv(in_channels, out_channels, 1, groups),
            group_conv(out_channels, out_channels, 1, out_channels // groups),
        ]
    )
