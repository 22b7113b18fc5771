"""Layers every simulator runs on the ``tiny`` preset, and their random tensors (numpy only).

The list covers every supported feature: strides 1-3, padding, R = 1 and R = rows, FC, groups,
several channel passes (psum spill), several filter blocks and stacked PE sets, strips of output
rows, batch N > 1, ReLU with a rounding shift, all-zero and dense inputs.
"""

import numpy as np

from ..config import preset
from ..gen.compiler import Layer, Mapping

__all__ = ["TEST_LAYERS", "CHANNEL_SET_CASES", "SIDE_BY_SIDE_CASES", "layer_tensors"]

TEST_LAYERS = {
    "relu_shift_pad_multipass": (Layer(N=2, C=5, M=7, H=7, W=6, R=3, S=3, pad=1, relu=True,
                                       out_shift=4), 0.3),
    "stride2_groups": (Layer(N=1, C=4, M=4, H=9, W=9, R=3, S=2, stride=2, groups=2), 0.3),
    "fc": (Layer(N=2, C=6, M=3, H=3, W=3, R=3, S=3), 0.0),
    "pointwise_stacked_sets": (Layer(N=1, C=3, M=9, H=6, W=6, R=1, S=1), 0.5),
    "stride3_unused_rows": (Layer(N=1, C=2, M=2, H=9, W=7, R=2, S=3, stride=3), 0.3),
    "strips": (Layer(N=1, C=1, M=2, H=12, W=5, R=3, S=3), 0.3),
    "all_zero": (Layer(N=1, C=2, M=3, H=5, W=5, R=3, S=3, pad=1, relu=True), 1.0),
    "wide_filter": (Layer(N=1, C=1, M=2, H=4, W=14, R=2, S=7, stride=2, out_shift=8), 0.2),
}

#: ``name: (config, layer, mapping)`` with ``r > 1`` channel sets per filter set (their psums
#: add up in the array), which ``TEST_LAYERS``' mappings on ``tiny`` rarely pick. A 4-row
#: array is the smallest where a filter of R = 2 gets two channel sets.
CHANNEL_SET_CASES = {
    "pointwise_r3": (preset("tiny"), TEST_LAYERS["pointwise_stacked_sets"][0],
                     Mapping(e=4, t=1, p=5, q=1, n=1, r=3, active_pes=12)),
    "stride_ge_R_r2": (preset("tiny"), Layer(N=1, C=4, M=3, H=7, W=7, R=1, S=3, stride=2,
                                             pad=1),
                       Mapping(e=4, t=1, p=3, q=2, n=1, r=2, active_pes=8)),
    "rows4_r2_batch2": (preset("tiny").replace(rows=4),
                        Layer(N=2, C=4, M=5, H=6, W=6, R=2, S=2, pad=1, relu=True, out_shift=2),
                        Mapping(e=4, t=1, p=5, q=2, n=2, r=2, active_pes=16)),
    "rows4_t2_r2": (preset("tiny").replace(rows=4), Layer(N=1, C=6, M=7, H=5, W=5, R=1, S=2),
                    Mapping(e=4, t=2, p=4, q=3, n=1, r=2, active_pes=16)),
}

#: ``name: (config, layer, mapping)`` with ``h > 1`` filter sets side by side (different filters,
#: the same ifmap values, in neighbouring column groups), alone, stacked in a grid, over ``r``
#: channel sets, with a stride of at least ``R``, and with a last filter block re-balanced to
#: one set (so the array configuration changes within the layer).
SIDE_BY_SIDE_CASES = {
    "side_h2_rebalanced": (preset("tiny"), Layer(N=1, C=3, M=5, H=4, W=6, R=3, S=3),
                           Mapping(e=2, t=2, p=2, q=1, n=1, h=2, active_pes=12)),
    "side_grid_batch2": (preset("tiny"),
                         Layer(N=2, C=2, M=7, H=3, W=5, R=1, S=2, pad=1, relu=True, out_shift=3),
                         Mapping(e=2, t=4, p=1, q=2, n=2, h=2, active_pes=8)),
    "side_h2_r2_rows4": (preset("tiny").replace(rows=4), Layer(N=1, C=4, M=6, H=4, W=4, R=2, S=2),
                         Mapping(e=2, t=2, p=2, q=1, n=1, r=2, h=2, active_pes=16)),
    "side_h4_stride2": (preset("tiny"), Layer(N=1, C=2, M=4, H=3, W=7, R=1, S=3, stride=2, pad=1),
                        Mapping(e=1, t=4, p=1, q=2, n=1, h=4, active_pes=4)),
}


def layer_tensors(config, layer, seed, zeros=0.3):
    """Random ifmap, weights and bias for ``layer`` spanning the full data range."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (config.data_width - 1)), 1 << (config.data_width - 1)
    ifmap = rng.integers(lo, hi, size=(layer.N, layer.C, layer.H, layer.W))
    ifmap[rng.random(ifmap.shape) < zeros] = 0
    weights = rng.integers(lo, hi, size=(layer.M, layer.C // layer.groups, layer.R, layer.S))
    bias = rng.integers(-(1 << (config.acc_width - 4)), 1 << (config.acc_width - 4),
                        size=layer.M)
    return ifmap, weights, bias
