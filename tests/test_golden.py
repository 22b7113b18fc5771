"""Tests of the bit-exact golden model :mod:`rsaccel.sim.golden`.

Expected values come from naive pure-Python loops over Python ints written here, from a float64
numpy reference on overflow-free cases, or from hand-worked numbers; never from the module itself.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsaccel.sim import golden

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# Naive references (Python ints only) -------------------------------------------------------------


def ref_wrap(v, width):
    return ((v + 2 ** (width - 1)) % 2 ** width) - 2 ** (width - 1)


def ref_conv_acc(x, w, b, stride, pad, groups, acc_width):
    """Nested loops over Python ints; x, w, b are nested lists."""
    n_, c_, h_, w_ = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    m_, cg, r_, s_ = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    mg = m_ // groups
    e_ = (h_ + 2 * pad - r_) // stride + 1
    f_ = (w_ + 2 * pad - s_) // stride + 1
    out = []
    for n in range(n_):
        plane_m = []
        for m in range(m_):
            g = m // mg
            plane_e = []
            for e in range(e_):
                row = []
                for f in range(f_):
                    total = b[m]
                    for ci in range(cg):
                        c = g * cg + ci
                        for r in range(r_):
                            for s in range(s_):
                                ih = e * stride + r - pad
                                iw = f * stride + s - pad
                                if 0 <= ih < h_ and 0 <= iw < w_:
                                    total += x[n][c][ih][iw] * w[m][ci][r][s]
                    row.append(ref_wrap(total, acc_width))
                plane_e.append(row)
            plane_m.append(plane_e)
        out.append(plane_m)
    return out


def ref_requant_scalar(a, out_shift, data_width, relu):
    y = (a + 2 ** (out_shift - 1)) >> out_shift if out_shift > 0 else a
    lo, hi = -(2 ** (data_width - 1)), 2 ** (data_width - 1) - 1
    y = min(max(y, lo), hi)
    if relu:
        y = max(y, 0)
    return y


def ref_requant(nested, out_shift, data_width, relu):
    if isinstance(nested, list):
        return [ref_requant(v, out_shift, data_width, relu) for v in nested]
    return ref_requant_scalar(nested, out_shift, data_width, relu)


def ref_maxpool(x, kh, kw, sh, sw, pad):
    n_, c_, h_, w_ = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    e_ = (h_ + 2 * pad - kh) // sh + 1
    f_ = (w_ + 2 * pad - kw) // sw + 1
    out = []
    for n in range(n_):
        out.append([])
        for c in range(c_):
            out[-1].append([])
            for e in range(e_):
                row = []
                for f in range(f_):
                    best = None
                    for r in range(kh):
                        for s in range(kw):
                            ih, iw = e * sh + r - pad, f * sw + s - pad
                            if 0 <= ih < h_ and 0 <= iw < w_:
                                v = x[n][c][ih][iw]
                                best = v if best is None else max(best, v)
                    row.append(best)
                out[-1][-1].append(row)
    return out


def ref_conv1d_row(rows, filters, psum, stride, acc_width):
    q, wrow = len(rows), len(rows[0])
    p, s_ = len(filters), len(filters[0][0])
    f_ = (wrow - s_) // stride + 1
    out = []
    for f in range(f_):
        line = []
        for k in range(p):
            total = psum[f][k]
            for c in range(q):
                for s in range(s_):
                    total += rows[c][f * stride + s] * filters[k][c][s]
            line.append(ref_wrap(total, acc_width))
        out.append(line)
    return out


def float_conv_acc(x, w, b, stride, pad, groups):
    """float64 reference convolution (exact only when no partial sum exceeds 2**53)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n_, c_, h_, w_ = x.shape
    m_, cg, r_, s_ = w.shape
    mg = m_ // groups
    e_ = (h_ + 2 * pad - r_) // stride + 1
    f_ = (w_ + 2 * pad - s_) // stride + 1
    xp = np.zeros((n_, c_, h_ + 2 * pad, w_ + 2 * pad))
    xp[:, :, pad:pad + h_, pad:pad + w_] = x
    out = np.zeros((n_, m_, e_, f_)) + np.asarray(b, dtype=np.float64)[None, :, None, None]
    for g in range(groups):
        for r in range(r_):
            for s in range(s_):
                patch = xp[:, g * cg:(g + 1) * cg,
                           r:r + stride * (e_ - 1) + 1:stride, s:s + stride * (f_ - 1) + 1:stride]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch,
                                                         w[g * mg:(g + 1) * mg, :, r, s])
    return out


# Strategies ---------------------------------------------------------------------------------------


def int_array(draw, shape, lo, hi, extreme):
    size = int(np.prod(shape))
    if extreme:
        elems = st.sampled_from([lo, hi, lo + 1, hi - 1, 0, -1, 1])
    else:
        elems = st.integers(lo, hi)
    flat = draw(st.lists(elems, min_size=size, max_size=size))
    return np.array(flat, dtype=np.int64).reshape(shape)


@st.composite
def conv_cases(draw, data_widths=(4, 16), acc_choice="any", bias_bits=None):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 3))
    mg = draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    r = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, r - 2 * pad), max(1, r - 2 * pad) + 5))
    w = draw(st.integers(max(1, s - 2 * pad), max(1, s - 2 * pad) + 5))
    dw = draw(st.integers(*data_widths))
    if acc_choice == "any":
        acc = draw(st.one_of(st.just(2 * dw), st.integers(2 * dw, 64)))
    else:
        acc = acc_choice
    lo, hi = -(2 ** (dw - 1)), 2 ** (dw - 1) - 1
    extreme = draw(st.booleans())
    x = int_array(draw, (n, groups * cg, h, w), lo, hi, extreme)
    wt = int_array(draw, (groups * mg, cg, r, s), lo, hi, extreme)
    bb = acc if bias_bits is None else bias_bits
    b = np.array(draw(st.lists(st.integers(-(2 ** (bb - 1)), 2 ** (bb - 1) - 1),
                               min_size=groups * mg, max_size=groups * mg)), dtype=np.int64)
    out_shift = draw(st.integers(0, acc - 1))
    relu = draw(st.booleans())
    return dict(x=x, w=wt, b=b, stride=stride, pad=pad, groups=groups, dw=dw, acc=acc,
                out_shift=out_shift, relu=relu)


# wrap ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, width, expected", [
    (2 ** 15, 16, -2 ** 15),
    (2 ** 15 - 1, 16, 2 ** 15 - 1),
    (-2 ** 15 - 1, 16, 2 ** 15 - 1),
    (1, 1, -1),
    (2, 1, 0),
    (-1, 1, -1),
    (255, 8, -1),
    (2 ** 63 - 1, 64, 2 ** 63 - 1),
    (-2 ** 63, 64, -2 ** 63),
    (2 ** 63 - 1, 63, -1),
])
def test_wrap_hand_cases(value, width, expected):
    out = golden.wrap(np.array([value], dtype=np.int64), width)
    assert out.dtype == np.int64
    assert out.tolist() == [expected]


def test_wrap_uint64_and_big_python_ints():
    assert golden.wrap(np.array([2 ** 64 - 1], dtype=np.uint64), 64).tolist() == [-1]
    assert golden.wrap(np.array([2 ** 64 - 1], dtype=np.uint64), 8).tolist() == [-1]
    big = np.array([2 ** 70 + 5, -(2 ** 80) - 3], dtype=object)
    assert golden.wrap(big, 64).tolist() == [5, -3]
    assert golden.wrap(big, 3).tolist() == [ref_wrap(2 ** 70 + 5, 3), ref_wrap(-(2 ** 80) - 3, 3)]


@SETTINGS
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=0, max_size=20), st.integers(1, 64))
def test_wrap_matches_formula(values, width):
    out = golden.wrap(np.array(values, dtype=np.int64), width)
    assert out.tolist() == [ref_wrap(v, width) for v in values]


# conv2d / conv2d_acc vs naive loops -------------------------------------------------------------


@SETTINGS
@given(conv_cases())
def test_conv2d_matches_naive(case):
    expected_acc = ref_conv_acc(case["x"].tolist(), case["w"].tolist(), case["b"].tolist(),
                                case["stride"], case["pad"], case["groups"], case["acc"])
    acc = golden.conv2d_acc(case["x"], case["w"], case["b"], stride=case["stride"],
                            pad=case["pad"], groups=case["groups"], data_width=case["dw"],
                            acc_width=case["acc"])
    assert acc.dtype == np.int64
    assert acc.tolist() == expected_acc
    out = golden.conv2d(case["x"], case["w"], case["b"], stride=case["stride"], pad=case["pad"],
                        groups=case["groups"], out_shift=case["out_shift"], relu=case["relu"],
                        data_width=case["dw"], acc_width=case["acc"])
    assert out.dtype == np.int64
    assert out.tolist() == ref_requant(expected_acc, case["out_shift"], case["dw"], case["relu"])


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(data_widths=(20, 32)))
def test_conv2d_wide_data_matches_naive(case):
    # Wide operands take the int64 product path (partial sums beyond 2**53).
    expected_acc = ref_conv_acc(case["x"].tolist(), case["w"].tolist(), case["b"].tolist(),
                                case["stride"], case["pad"], case["groups"], case["acc"])
    acc = golden.conv2d_acc(case["x"], case["w"], case["b"], stride=case["stride"],
                            pad=case["pad"], groups=case["groups"], data_width=case["dw"],
                            acc_width=case["acc"])
    assert acc.tolist() == expected_acc


def test_conv2d_acc_wraps_at_small_acc_width():
    # 2 channels x 2 x 2 taps of 7 * 7 = 392; acc_width 8 -> 392 - 512 = -120 (hand computed).
    x = np.full((1, 2, 2, 2), 7, dtype=np.int64)
    w = np.full((1, 2, 2, 2), 7, dtype=np.int64)
    acc = golden.conv2d_acc(x, w, [0], data_width=4, acc_width=8)
    assert acc.tolist() == [[[[-120]]]]
    # Bias 100: 492 -> 492 - 512 = -20.
    assert golden.conv2d_acc(x, w, [100], data_width=4, acc_width=8).tolist() == [[[[-20]]]]
    # -8 * -8 * 8 = 512 -> 0 at 8 bits, 512 at 12 bits.
    xn = np.full((1, 2, 2, 2), -8, dtype=np.int64)
    assert golden.conv2d_acc(xn, xn, [0], data_width=4, acc_width=8).tolist() == [[[[0]]]]
    assert golden.conv2d_acc(xn, xn, [0], data_width=4, acc_width=12).tolist() == [[[[512]]]]


def test_conv2d_hand_example_with_padding_and_stride():
    # 1x1x3x3 input 1..9, 2x2 ones filter, pad 1, stride 2 -> windows over the padded 5x5 map.
    x = np.arange(1, 10, dtype=np.int64).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2), dtype=np.int64)
    acc = golden.conv2d_acc(x, w, [10], stride=2, pad=1)
    # Top-left window sees only x[0,0]=1; top-right sees x[0,1]+x[0,2]=5; bottom-left x[1,0]+x[2,0]
    # = 4+7 = 11; bottom-right 5+6+8+9 = 28; each plus the bias 10.
    assert acc.tolist() == [[[[11, 15], [21, 38]]]]
    # out_shift 2 rounds half up: 11/4=2.75->3, 15/4=3.75->4, 21/4=5.25->5, 38/4=9.5->10.
    out = golden.conv2d(x, w, [10], stride=2, pad=1, out_shift=2)
    assert out.tolist() == [[[[3, 4], [5, 10]]]]


def test_conv2d_groups_keep_channels_apart():
    # Two groups: output 0 sees only channel 0, output 1 only channel 1.
    x = np.array([[[[3]], [[5]]]], dtype=np.int64)          # (1, 2, 1, 1)
    w = np.array([[[[2]]], [[[7]]]], dtype=np.int64)          # (2, 1, 1, 1)
    assert golden.conv2d_acc(x, w, [0, 0], groups=2).tolist() == [[[[6]], [[35]]]]


@SETTINGS
@given(conv_cases(data_widths=(4, 8), acc_choice=64, bias_bits=40))
def test_conv2d_matches_float_reference(case):
    # data_width <= 8 and acc_width 64: no wrap, and float64 is exact for these magnitudes.
    ref = float_conv_acc(case["x"], case["w"], case["b"], case["stride"], case["pad"],
                         case["groups"])
    acc = golden.conv2d_acc(case["x"], case["w"], case["b"], stride=case["stride"],
                            pad=case["pad"], groups=case["groups"], data_width=case["dw"],
                            acc_width=64)
    assert np.array_equal(acc, ref.astype(np.int64))
    k = case["out_shift"]
    y = np.floor(ref / 2.0 ** k + 0.5) if k else ref
    lim = 2.0 ** (case["dw"] - 1)
    y = np.clip(y, -lim, lim - 1)
    if case["relu"]:
        y = np.maximum(y, 0)
    out = golden.conv2d(case["x"], case["w"], case["b"], stride=case["stride"], pad=case["pad"],
                        groups=case["groups"], out_shift=k, relu=case["relu"],
                        data_width=case["dw"], acc_width=64)
    assert np.array_equal(out, y.astype(np.int64))


# requantize --------------------------------------------------------------------------------------


@pytest.mark.parametrize("acc, shift, dw, relu, expected", [
    (5, 1, 16, False, 3),
    (-5, 1, 16, False, -2),
    (4, 1, 16, False, 2),
    (6, 2, 16, False, 2),
    (-6, 2, 16, False, -1),
    (-7, 2, 16, False, -2),
    (7, 0, 16, False, 7),
    (-5, 1, 16, True, 0),
    (40000, 0, 16, False, 32767),
    (-40000, 0, 16, False, -32768),
    (131070, 1, 16, False, 32767),
    (-131070, 1, 16, True, 0),
    (9, 0, 4, False, 7),
    (-9, 0, 4, False, -8),
    (2 ** 63 - 1, 63, 32, False, 1),
    (-2 ** 63, 63, 32, False, -1),
    (2 ** 63 - 1, 40, 32, False, 2 ** 23),
    (-2 ** 63, 40, 32, False, -2 ** 23),
    (2 ** 63 - 1, 1, 32, False, 2 ** 31 - 1),
    (-2 ** 63, 1, 32, False, -2 ** 31),
    (2 ** 62 + 2 ** 61, 62, 32, False, 2),
    (2 ** 62 + 2 ** 61 - 1, 62, 32, False, 1),
])
def test_requantize_hand_cases(acc, shift, dw, relu, expected):
    out = golden.requantize(np.array([acc], dtype=np.int64), out_shift=shift, data_width=dw,
                            relu=relu)
    assert out.dtype == np.int64
    assert out.tolist() == [expected]


@SETTINGS
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=20),
       st.integers(0, 63), st.integers(2, 32), st.booleans())
def test_requantize_matches_python_ints(values, shift, dw, relu):
    out = golden.requantize(np.array(values, dtype=np.int64), out_shift=shift, data_width=dw,
                            relu=relu)
    assert out.tolist() == [ref_requant_scalar(v, shift, dw, relu) for v in values]


# fc ----------------------------------------------------------------------------------------------


@st.composite
def fc_cases(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 4))
    mg = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    flat = draw(st.booleans())
    h, w = (1, 1) if flat else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dw = draw(st.integers(4, 16))
    acc = draw(st.one_of(st.just(2 * dw), st.integers(2 * dw, 64)))
    lo, hi = -(2 ** (dw - 1)), 2 ** (dw - 1) - 1
    extreme = draw(st.booleans())
    x = int_array(draw, (n, groups * cg, h, w), lo, hi, extreme)
    wt = int_array(draw, (groups * mg, cg, h, w), lo, hi, extreme)
    b = np.array(draw(st.lists(st.integers(-(2 ** (acc - 1)), 2 ** (acc - 1) - 1),
                               min_size=groups * mg, max_size=groups * mg)), dtype=np.int64)
    if flat:
        x, wt = x[:, :, 0, 0], wt[:, :, 0, 0]
    return dict(x=x, w=wt, b=b, groups=groups, dw=dw, acc=acc,
                out_shift=draw(st.integers(0, acc - 1)), relu=draw(st.booleans()))


@SETTINGS
@given(fc_cases())
def test_fc_matches_naive(case):
    x = case["x"].tolist()
    w = case["w"].tolist()
    b = case["b"].tolist()
    groups = case["groups"]
    m_ = len(w)
    mg = m_ // groups
    cg = len(w[0])
    expected = []
    for n in range(len(x)):
        row = []
        for m in range(m_):
            g = m // mg
            total = b[m]
            for ci in range(cg):
                xv, wv = x[n][g * cg + ci], w[m][ci]
                if isinstance(xv, list):      # (H, W) planes
                    for hh in range(len(xv)):
                        for ww in range(len(xv[0])):
                            total += xv[hh][ww] * wv[hh][ww]
                else:
                    total += xv * wv
            row.append(ref_requant_scalar(ref_wrap(total, case["acc"]), case["out_shift"],
                                          case["dw"], case["relu"]))
        expected.append(row)
    out = golden.fc(case["x"], case["w"], case["b"], groups=groups, out_shift=case["out_shift"],
                    relu=case["relu"], data_width=case["dw"], acc_width=case["acc"])
    assert out.dtype == np.int64
    assert out.tolist() == expected


def test_fc_hand_example():
    x = np.array([[1, -2, 3]])
    w = np.array([[4, 5, 6], [-1, -1, -1]])
    # 4 - 10 + 18 + 1 = 13; -1 + 2 - 3 + 0 = -2, relu -> 0.
    assert golden.fc(x, w, [1, 0]).tolist() == [[13, -2]]
    assert golden.fc(x, w, [1, 0], relu=True).tolist() == [[13, 0]]


# maxpool -----------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_maxpool_matches_naive(data):
    kh = data.draw(st.integers(1, 3))
    kw = data.draw(st.integers(1, 3))
    sh = data.draw(st.integers(1, 3))
    sw = data.draw(st.integers(1, 3))
    pad = data.draw(st.integers(0, min(kh, kw) - 1))
    h = data.draw(st.integers(max(1, kh - 2 * pad), kh + 4))
    w = data.draw(st.integers(max(1, kw - 2 * pad), kw + 4))
    n = data.draw(st.integers(1, 2))
    c = data.draw(st.integers(1, 3))
    elems = st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.sampled_from([-2 ** 63, -1, 0]))
    flat = data.draw(st.lists(elems, min_size=n * c * h * w, max_size=n * c * h * w))
    x = np.array(flat, dtype=np.int64).reshape(n, c, h, w)
    square = kh == kw and sh == sw and data.draw(st.booleans())
    kernel = kh if square else (kh, kw)
    stride = sh if square else (sh, sw)
    out = golden.maxpool2d(x, kernel=kernel, stride=stride, pad=pad)
    assert out.dtype == np.int64
    assert out.tolist() == ref_maxpool(x.tolist(), kh, kw, sh, sw, pad)


def test_maxpool_padding_never_wins():
    # All-negative input with padding: a zero pad would win if it took part.
    x = -np.arange(1, 10, dtype=np.int64).reshape(1, 1, 3, 3)   # -1 .. -9
    out = golden.maxpool2d(x, kernel=2, stride=2, pad=1)
    # Windows: {x00}, {x01, x02}, {x10, x20}, {x11, x12, x21, x22}.
    assert out.tolist() == [[[[-1, -2], [-4, -5]]]]


# conv1d_row --------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_conv1d_row_matches_naive(data):
    q = data.draw(st.integers(1, 3))
    p = data.draw(st.integers(1, 3))
    s = data.draw(st.integers(1, 4))
    stride = data.draw(st.integers(1, 3))
    wrow = data.draw(st.integers(s, s + 8))
    acc = data.draw(st.integers(2, 64))
    dw = data.draw(st.integers(1, 32))
    f = (wrow - s) // stride + 1
    vals = st.integers(-(2 ** (dw - 1)), 2 ** (dw - 1) - 1)
    rows = np.array(data.draw(st.lists(vals, min_size=q * wrow, max_size=q * wrow)),
                    dtype=np.int64).reshape(q, wrow)
    filt = np.array(data.draw(st.lists(vals, min_size=p * q * s, max_size=p * q * s)),
                    dtype=np.int64).reshape(p, q, s)
    psum_vals = st.integers(-(2 ** (acc - 1)), 2 ** (acc - 1) - 1)
    psum = np.array(data.draw(st.lists(psum_vals, min_size=f * p, max_size=f * p)),
                    dtype=np.int64).reshape(f, p)
    out = golden.conv1d_row(rows, filt, psum, stride=stride, acc_width=acc)
    assert out.dtype == np.int64
    assert out.tolist() == ref_conv1d_row(rows.tolist(), filt.tolist(), psum.tolist(), stride, acc)


def test_conv1d_row_hand_example():
    rows = np.array([[1, 2, 3, 4, 5]])
    filt = np.array([[[1, -1]], [[2, 2]]])              # p=2, q=1, S=2
    psum = np.array([[100, 0], [0, 0]])                 # stride 2 -> F = 2
    # f=0: 1-2=-1 (+100), 2*(1+2)=6; f=1: 3-4=-1, 2*(3+4)=14.
    out = golden.conv1d_row(rows, filt, psum, stride=2, acc_width=8)
    assert out.tolist() == [[99, 6], [-1, 14]]
    # acc_width 8 wraps 99 + 100 = 199 -> -57.
    out = golden.conv1d_row(rows, filt, np.array([[200, 0], [0, 0]]), stride=2, acc_width=8)
    assert out.tolist() == [[-57, 6], [-1, 14]]


# AlexNet-shaped layers ---------------------------------------------------------------------------


def _spot_check(x, w, b, out, positions, stride, pad, groups, acc_width):
    m_total, cg, r_, s_ = w.shape
    mg = m_total // groups
    h_, w_ = x.shape[2:]
    for n, m, e, f in positions:
        g = m // mg
        total = int(b[m])
        for ci in range(cg):
            for r in range(r_):
                for s in range(s_):
                    ih, iw = e * stride + r - pad, f * stride + s - pad
                    if 0 <= ih < h_ and 0 <= iw < w_:
                        total += int(x[n, g * cg + ci, ih, iw]) * int(w[m, ci, r, s])
        assert int(out[n, m, e, f]) == ref_wrap(total, acc_width), (n, m, e, f)


def test_alexnet_conv1_shape_and_spot_values():
    rng = np.random.default_rng(1)
    x = rng.integers(-2 ** 15, 2 ** 15, (4, 3, 227, 227))
    w = rng.integers(-2 ** 15, 2 ** 15, (96, 3, 11, 11))
    b = rng.integers(-2 ** 31, 2 ** 31, 96)
    acc = golden.conv2d_acc(x, w, b, stride=4)
    assert acc.shape == (4, 96, 55, 55)
    _spot_check(x, w, b, acc, [(0, 0, 0, 0), (3, 95, 54, 54), (1, 40, 17, 33), (2, 7, 54, 0)],
                stride=4, pad=0, groups=1, acc_width=32)


def test_alexnet_conv2_grouped_shape_and_spot_values():
    rng = np.random.default_rng(2)
    x = rng.integers(-2 ** 15, 2 ** 15, (4, 96, 27, 27))
    w = rng.integers(-2 ** 15, 2 ** 15, (256, 48, 5, 5))
    b = rng.integers(-2 ** 31, 2 ** 31, 256)
    out = golden.conv2d(x, w, b, pad=2, groups=2, out_shift=12, relu=True)
    acc = golden.conv2d_acc(x, w, b, pad=2, groups=2)
    assert out.shape == acc.shape == (4, 256, 27, 27)
    _spot_check(x, w, b, acc, [(0, 0, 0, 0), (3, 255, 26, 26), (1, 128, 13, 0), (2, 127, 0, 26)],
                stride=1, pad=2, groups=2, acc_width=32)
    assert int(out[3, 255, 26, 26]) == ref_requant_scalar(int(acc[3, 255, 26, 26]), 12, 16, True)


# Validation ---------------------------------------------------------------------------------------


def _ok_conv(**over):
    args = dict(ifmap=np.zeros((1, 4, 5, 5), dtype=np.int64),
                weights=np.zeros((6, 2, 3, 3), dtype=np.int64),
                bias=np.zeros(6, dtype=np.int64))
    opts = dict(groups=2)
    for k, v in over.items():
        (args if k in args else opts)[k] = v
    return args, opts


def test_valid_baseline_runs():
    args, opts = _ok_conv()
    assert golden.conv2d(**args, **opts).shape == (1, 6, 3, 3)


def test_ifmap_out_of_range_message():
    x = np.zeros((1, 2, 3, 4), dtype=np.int64)
    x[0, 1, 2, 3] = 40000
    w = np.zeros((1, 2, 1, 1), dtype=np.int64)
    with pytest.raises(ValueError, match=r"^ifmap value 40000 at index \(0, 1, 2, 3\) is outside "
                                         r"the signed 16-bit range \[-32768, 32767\]$"):
        golden.conv2d(x, w, [0])


@pytest.mark.parametrize("over, exc, pattern", [
    (dict(weights=np.full((6, 2, 3, 3), 8)), ValueError,
     r"weights value 8 at index \(0, 0, 0, 0\) is outside the signed 4-bit range \[-8, 7\]"),
    (dict(ifmap=np.full((1, 4, 5, 5), -9)), ValueError, r"ifmap value -9 .*4-bit"),
    (dict(bias=np.array([0, 0, 0, 0, 0, 128])), ValueError,
     r"bias value 128 at index \(5,\) is outside the signed 8-bit range \[-128, 127\]"),
    (dict(groups=3), ValueError, r"C = 4 must be divisible by groups = 3"),
    (dict(weights=np.zeros((5, 2, 3, 3), dtype=np.int64), bias=np.zeros(5, dtype=np.int64)),
     ValueError, r"M = 5 must be divisible by groups = 2"),
    (dict(weights=np.zeros((6, 4, 3, 3), dtype=np.int64)), ValueError,
     r"channel dimension must be C / groups = 4 / 2 = 2, not 4"),
    (dict(bias=np.zeros(5, dtype=np.int64)), ValueError, r"bias must have shape \(M,\) = \(6,\)"),
    (dict(weights=np.zeros((6, 2, 7, 3), dtype=np.int64)), ValueError, r"output height E"),
    (dict(weights=np.zeros((6, 2, 3, 7), dtype=np.int64)), ValueError, r"output width F"),
    (dict(stride=0), ValueError, r"stride must be at least 1, not 0"),
    (dict(pad=-1), ValueError, r"pad must be at least 0, not -1"),
    (dict(groups=0), ValueError, r"groups must be at least 1, not 0"),
    (dict(out_shift=8), ValueError, r"out_shift must be 0 .* \[1, 7\], not 8"),
    (dict(out_shift=-1), ValueError, r"out_shift .* not -1"),
    (dict(data_width=1), ValueError, r"data_width must be in \[2, 32\], not 1"),
    (dict(data_width=33, acc_width=64), ValueError, r"data_width must be in \[2, 32\], not 33"),
    (dict(acc_width=7), ValueError, r"acc_width must be in \[2 \* data_width, 64\] = \[8, 64\] .*"
                                    r"not 7"),
    (dict(acc_width=65), ValueError, r"acc_width .* not 65"),
    (dict(ifmap=np.zeros((1, 4, 5, 5))), TypeError, r"ifmap must be an array of integers"),
    (dict(ifmap=np.zeros((1, 4, 5, 5), dtype=bool)), TypeError, r"ifmap must be an array of int"),
    (dict(ifmap=np.zeros((4, 5, 5), dtype=np.int64)), ValueError, r"ifmap must be a 4-D array"),
    (dict(stride=1.5), TypeError, r"stride must be an integer, not 1.5"),
    (dict(pad=True), TypeError, r"pad must be an integer, not True"),
    (dict(relu=1), TypeError, r"relu must be a bool, not 1"),
    (dict(data_width="16"), TypeError, r"data_width must be an integer"),
])
def test_conv2d_validation(over, exc, pattern):
    over = dict(over)
    over.setdefault("data_width", 4)
    over.setdefault("acc_width", 8)
    args, opts = _ok_conv(**over)
    with pytest.raises(exc, match=pattern):
        golden.conv2d(**args, **opts)


def test_conv2d_acc_validation_shares_checks():
    with pytest.raises(ValueError, match=r"stride must be at least 1, not 0"):
        golden.conv2d_acc(np.zeros((1, 1, 3, 3), dtype=np.int64),
                          np.zeros((1, 1, 1, 1), dtype=np.int64), [0], stride=0)
    with pytest.raises(ValueError, match=r"bias value 2147483648 at index \(0,\)"):
        golden.conv2d_acc(np.zeros((1, 1, 3, 3), dtype=np.int64),
                          np.zeros((1, 1, 1, 1), dtype=np.int64), [2 ** 31])


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: golden.wrap(np.array([1]), 0), ValueError, r"width must be in \[1, 64\], not 0"),
    (lambda: golden.wrap(np.array([1]), 65), ValueError, r"width must be in \[1, 64\], not 65"),
    (lambda: golden.wrap(np.array([1.0]), 8), TypeError, r"x must be an array of integers"),
    (lambda: golden.requantize(np.array([1]), out_shift=64), ValueError,
     r"out_shift must be in \[0, 63\], not 64"),
    (lambda: golden.requantize(np.array([1.5])), TypeError, r"acc must be an array of integers"),
    (lambda: golden.requantize(np.array([2 ** 64 - 1], dtype=np.uint64)), ValueError,
     r"acc value 18446744073709551615 at index \(0,\) is outside the signed 64-bit range"),
    (lambda: golden.maxpool2d(np.zeros((1, 1, 4, 4), dtype=np.int64), kernel=2, stride=2, pad=2),
     ValueError, r"pad must be less than the kernel size 2 .*not 2"),
    (lambda: golden.maxpool2d(np.zeros((1, 1, 4, 4), dtype=np.int64), kernel=5, stride=1),
     ValueError, r"smaller than the kernel height 5"),
    (lambda: golden.maxpool2d(np.zeros((1, 1, 4, 4), dtype=np.int64), kernel=0, stride=1),
     ValueError, r"kernel must be at least 1, not 0"),
    (lambda: golden.conv1d_row(np.zeros((2, 6), dtype=np.int64),
                               np.zeros((3, 2, 3), dtype=np.int64),
                               np.zeros((3, 3), dtype=np.int64), stride=2, acc_width=32),
     ValueError, r"psum_in must have shape \(F, p\) = \(2, 3\) .* not \(3, 3\)"),
    (lambda: golden.conv1d_row(np.zeros((2, 6), dtype=np.int64),
                               np.zeros((3, 1, 3), dtype=np.int64),
                               np.zeros((2, 3), dtype=np.int64), stride=2, acc_width=32),
     ValueError, r"filters channel dimension must equal the number of ifmap rows q = 2, not 1"),
    (lambda: golden.conv1d_row(np.zeros((2, 6), dtype=np.int64),
                               np.zeros((3, 2, 3), dtype=np.int64),
                               np.zeros((2, 3), dtype=np.int64), stride=2, acc_width=65),
     ValueError, r"acc_width must be in \[2, 64\], not 65"),
    (lambda: golden.fc(np.zeros((2, 3, 2, 2), dtype=np.int64), np.zeros((4, 3, 1, 2),
                                                                         dtype=np.int64),
                       np.zeros(4, dtype=np.int64)),
     ValueError, r"spatial size \(R, S\) = \(1, 2\) must equal the input size \(H, W\) = \(2, 2\)"),
    (lambda: golden.fc(np.zeros((2, 3), dtype=np.int64), np.zeros((4, 3), dtype=np.int64),
                       np.zeros(4, dtype=np.int64), pad=1),
     ValueError, r"2 \* pad must be less than stride = 1; pad = 1"),
    (lambda: golden.fc(np.zeros(3, dtype=np.int64), np.zeros((4, 3), dtype=np.int64),
                       np.zeros(4, dtype=np.int64)),
     ValueError, r"x must be a 2-D \(N, C\) or 4-D"),
])
def test_other_validation(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
