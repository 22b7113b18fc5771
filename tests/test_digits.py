"""Tests of the digits CNN fixture (:mod:`rsaccel.sim.digits`) and of zero gating on its data.

Expected values come from scikit-learn's data set directly, from plain integer loops written
here, or from the golden model; never from the module under test. The last test runs a digits
layer on the generated accelerator (Verilator, ``tiny`` preset, the shared build).
"""

import itertools

import numpy as np
import pytest

from rsaccel import preset
from rsaccel.gen.compiler import Layer, Mapping, compile_layer
from rsaccel.sim import digits
from rsaccel.sim.golden import conv2d, conv2d_acc, maxpool2d
from rsaccel.sim.runtime import run_layer

TINY = preset("tiny")


@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits
    return load_digits()


# Plain references -------------------------------------------------------------------------------


def naive_layer(x, w, b, *, pad, out_shift, relu):
    """The layer's contract, spelled out with integer numpy (no golden model)."""
    n, c, h, wd = x.shape
    m, _, r, s = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=np.int64)
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    e, f = h + 2 * pad - r + 1, wd + 2 * pad - s + 1
    acc = np.zeros((n, m, e, f), dtype=np.int64) + np.asarray(b, dtype=np.int64)[:, None, None]
    for i, j in itertools.product(range(r), range(s)):
        acc += np.einsum("nchw,mc->nmhw", xp[:, :, i:i + e, j:j + f], w[:, :, i, j])
    assert np.all(np.abs(acc) < 2 ** 31), "accumulator outside int32: the contract would wrap"
    y = (acc + (1 << (out_shift - 1))) >> out_shift if out_shift else acc
    y = np.clip(y, -32768, 32767)
    return np.maximum(y, 0) if relu else y


def naive_pool(y, k):
    n, c, h, w = y.shape
    out = np.empty((n, c, h // k, w // k), dtype=np.int64)
    for a, bb in itertools.product(range(h // k), range(w // k)):
        out[:, :, a, bb] = y[:, :, a * k:(a + 1) * k, bb * k:(bb + 1) * k].max(axis=(2, 3))
    return out


def brute_gated(layer, x):
    """MACs whose ifmap operand is zero, one at a time (padding counts as zero)."""
    L = layer
    cg, mg = L.C // L.groups, L.M // L.groups
    count = 0
    for n, m, e, f in itertools.product(range(L.N), range(L.M), range(L.E), range(L.F)):
        g = m // mg
        for c, r, s in itertools.product(range(cg), range(L.R), range(L.S)):
            h, w = e * L.stride + r - L.pad, f * L.stride + s - L.pad
            inside = 0 <= h < L.H and 0 <= w < L.W
            if not inside or x[n, g * cg + c, h, w] == 0:
                count += 1
    return count


# Training, quantisation, accuracy ---------------------------------------------------------------


def test_training_is_deterministic_from_the_seed():
    a = digits.train_float(3, epochs=2)
    b = digits.train_float(3, epochs=2)
    c = digits.train_float(4, epochs=2)
    for name, *_ in digits.ARCHITECTURE:
        for k in range(2):
            np.testing.assert_array_equal(a[name][k], b[name][k], err_msg=f"{name} seed 3")
        assert not np.array_equal(a[name][0], c[name][0]), f"{name}: seeds 3 and 4 agree"


def test_split_is_fixed_stratified_and_disjoint(sklearn_digits):
    split = digits.load_split()
    np.testing.assert_array_equal(split.images, sklearn_digits.images)
    assert np.intersect1d(split.train, split.test).size == 0
    assert split.train.size + split.test.size == 1797
    counts = np.bincount(sklearn_digits.target[split.test], minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46, counts     # 25 % of 174..183 per class


def test_quantised_accuracy_on_held_out_digits(sklearn_digits):
    # Threshold: 95 %. Seeds 0-4 of this network gave 98.4-99.6 % held-out accuracy, float and
    # quantised alike, so 95 % leaves room for another BLAS's rounding; a quantisation that loses
    # a bit of scale or saturates early costs more than that, and chance is 10 %.
    net = digits.digits_network(0)
    split = digits.load_split()
    x = sklearn_digits.images[split.test].astype(np.int64)[:, None]
    for q in net.layers:                       # the chain from the golden model, here
        y = conv2d(x, q.weights, q.bias, pad=q.pad, relu=q.relu, out_shift=q.out_shift)
        x = maxpool2d(y, kernel=q.pool, stride=q.pool) if q.pool else y
    pred = x[:, :, 0, 0].argmax(axis=1)
    accuracy = np.mean(pred == sklearn_digits.target[split.test])
    assert accuracy >= 0.95, f"quantised held-out accuracy {accuracy:.3f} < 0.95"
    assert accuracy == pytest.approx(net.quant_accuracy)
    assert net.float_accuracy >= 0.95
    # quantisation costs at most 1 % of the held-out images
    assert accuracy >= net.float_accuracy - 0.01


def test_quantised_chain_is_golden_layer_by_layer(sklearn_digits):
    split = digits.load_split()
    layers = digits.digits_layers(3, 0, first=5)
    assert [d.name for d in layers] == ["conv1", "conv2", "conv3", "fc"]
    np.testing.assert_array_equal(layers[0].ifmap[:, 0], sklearn_digits.images[split.test[5:8]])
    for d, after in zip(layers, layers[1:] + [None]):
        L = d.layer
        assert (L.N, L.C, L.H, L.W) == d.ifmap.shape and L.stride == 1 and L.groups == 1
        assert d.weights.shape == (L.M, L.C, L.R, L.S) and d.bias.shape == (L.M,)
        assert d.ifmap.min() >= 0 and d.ifmap.max() <= 32767       # images and ReLU outputs
        assert 0 <= L.out_shift < TINY.acc_width and L.R <= TINY.rows
        ref = naive_layer(d.ifmap, d.weights, d.bias, pad=L.pad, out_shift=L.out_shift,
                          relu=L.relu)
        gold = conv2d(d.ifmap, d.weights, d.bias, stride=L.stride, pad=L.pad, relu=L.relu,
                      out_shift=L.out_shift)
        np.testing.assert_array_equal(gold, ref, err_msg=d.name)
        if after is not None:
            expect = naive_pool(ref, d.pool) if d.pool else ref
            np.testing.assert_array_equal(after.ifmap, expect, err_msg=f"{d.name} -> "
                                                                       f"{after.name}")


def test_accumulators_never_wrap_on_the_whole_data_set():
    # every layer's int32 accumulator holds the exact sum for all 1797 images
    net = digits.digits_network(0)
    x = digits.load_split().images.astype(np.int64)[:, None]
    for q in net.layers:
        wide = conv2d_acc(x, q.weights, q.bias, pad=q.pad, acc_width=64)
        assert np.abs(wide).max() < 2 ** 31, q.name
        y = conv2d(x, q.weights, q.bias, pad=q.pad, relu=q.relu, out_shift=q.out_shift)
        x = maxpool2d(y, kernel=q.pool, stride=q.pool) if q.pool else y


def test_digits_layers_rejects_too_many_images():
    with pytest.raises(ValueError, match=r"first \+ n_images = 451 exceeds the 450"):
        digits.digits_layers(2, 0, first=449)


# Zero operands ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_exact_gated_macs_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 1, 2]))
    pad = int(rng.integers(0, 3))
    R, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    layer = Layer(N=int(rng.integers(1, 3)), C=groups * int(rng.integers(1, 4)),
                  M=groups * int(rng.integers(1, 4)), H=int(rng.integers(max(1, R - 2 * pad), 7)),
                  W=int(rng.integers(max(1, S - 2 * pad), 7)), R=R, S=S,
                  stride=int(rng.integers(1, 4)), pad=pad, groups=groups)
    x = rng.integers(-3, 4, size=(layer.N, layer.C, layer.H, layer.W))
    x[rng.random(x.shape) < rng.random()] = 0
    assert digits.exact_gated_macs(layer, x) == brute_gated(layer, x), f"seed {seed}: {layer}"


def test_exact_gated_macs_counts_padded_filters_of_a_mapping():
    # M = 5 filters in t = 3 sets of p = 2: the array runs 6 filter slots, one all-zero filter
    layer = Layer(N=1, C=2, M=5, H=4, W=4, R=1, S=1)
    mapping = Mapping(e=4, t=3, p=2, q=2, n=1, active_pes=12)
    x = np.random.default_rng(7).integers(-2, 3, size=(1, 2, 4, 4))
    per_filter = int(np.sum(x == 0))                  # R = S = 1, stride 1: one MAC per value
    assert digits.exact_gated_macs(layer, x) == 5 * per_filter
    assert digits.exact_gated_macs(layer, x, mapping) == 6 * per_filter
    # with an all-zero ifmap every slot the array executes is gated
    zeros = np.zeros_like(x)
    compiled = compile_layer(TINY, layer, zeros, np.ones((5, 2, 1, 1), dtype=np.int64),
                             np.zeros(5, dtype=np.int64), mapping)
    assert digits.exact_gated_macs(layer, zeros, mapping) == compiled.mac_slots == 6 * 32


def test_exact_gated_macs_rejects_a_wrong_shape():
    layer = Layer(N=1, C=2, M=1, H=3, W=3, R=1, S=1)
    with pytest.raises(ValueError, match=r"ifmap must have shape \(1, 2, 3, 3\)"):
        digits.exact_gated_macs(layer, np.zeros((1, 1, 3, 3), dtype=np.int64))


# On the accelerator -----------------------------------------------------------------------------


@pytest.mark.xdist_group("hdl-accelerator-tiny")
def test_digits_conv2_on_verilator(hdl_build_root):
    d = {x.name: x for x in digits.digits_layers(1, 0)}["conv2"]
    L = d.layer
    result = run_layer(TINY, L, d.ifmap, d.weights, d.bias, simulator="verilator",
                       build_root=hdl_build_root, seed=1, stall=0.25)
    ref = conv2d(d.ifmap, d.weights, d.bias, stride=L.stride, pad=L.pad, relu=L.relu,
                 out_shift=L.out_shift)
    bad = np.argwhere(result.ofmap != ref)
    assert bad.size == 0, (f"{L}: first mismatch at {tuple(bad[0])}: got "
                           f"{result.ofmap[tuple(bad[0])]}, expected {ref[tuple(bad[0])]}")
    c = result.counters
    gated = digits.exact_gated_macs(L, d.ifmap)
    assert 0 < gated < L.macs
    assert c["gated_macs"] == gated, f"RTL {c['gated_macs']} gated MACs, exact {gated}"
    assert c["macs"] + c["gated_macs"] == L.macs     # the mapping pads no filters here
