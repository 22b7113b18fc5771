"""Bit-exact numpy golden model of the accelerator arithmetic.

Every function here defines the numeric contract that the hardware must match bit for bit.

Contract for one layer with batch ``N``, input channels ``C``, output channels ``M``, input size
``H x W``, filter size ``R x S``, stride ``U``, zero padding ``P`` (same on all four sides) and
``G`` groups:

* ifmap ``(N, C, H, W)`` and weights ``(M, C/G, R, S)`` are signed ``data_width``-bit integers; the
  bias ``(M,)`` is a signed ``acc_width``-bit integer per output channel.
* ``acc[n, m, e, f] = bias[m] + sum_{c, r, s} ifmap_padded[n, c, e*U + r, f*U + s] * w[m, c, r, s]``
  where ``c`` runs over the input channels of ``m``'s group. The sum is exact and then kept modulo
  ``2**acc_width`` as a two's complement number (overflow wraps).
  ``E = (H + 2P - R) // U + 1`` and ``F = (W + 2P - S) // U + 1``.
* Requantisation: for ``out_shift > 0``, ``y = (acc + 2**(out_shift - 1)) >> out_shift``
  (arithmetic shift, round half up, no further wrap), otherwise ``y = acc``; ``y`` is then saturated
  to the signed ``data_width`` range and, with ``relu``, clamped below at 0.
* A fully connected layer is the convolution with ``R = H`` and ``S = W``.

All results are ``numpy.int64`` arrays. Integer ``int64`` arithmetic wraps modulo ``2**64``, which
agrees with the final reduction modulo ``2**acc_width`` for every ``acc_width <= 64``.
"""

import operator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "wrap",
    "conv2d_acc",
    "requantize",
    "conv2d",
    "fc",
    "maxpool2d",
    "conv1d_row",
]

#: A float64 matrix product is exact when every partial sum stays below this magnitude.
_FLOAT_EXACT_LIMIT = 2 ** 53


# Argument checking helpers ---------------------------------------------------------------------


def _check_int(name, value, lo=None, hi=None):
    """Return ``value`` as a Python int, checking its type and the closed range ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if lo is not None and value < lo:
        if hi is None:
            raise ValueError(f"{name} must be at least {lo}, not {value}")
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    if hi is not None and value > hi:
        if lo is None:
            raise ValueError(f"{name} must be at most {hi}, not {value}")
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    return value


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return bool(value)


def _check_widths(data_width, acc_width):
    data_width = _check_int("data_width", data_width, 2, 32)
    acc_width = _check_int("acc_width", acc_width)
    if not 2 * data_width <= acc_width <= 64:
        raise ValueError(f"acc_width must be in [2 * data_width, 64] = [{2 * data_width}, 64] "
                         f"to hold a full product, not {acc_width}")
    return data_width, acc_width


def _check_out_shift(out_shift, acc_width):
    out_shift = _check_int("out_shift", out_shift)
    if not 0 <= out_shift < acc_width:
        raise ValueError(f"out_shift must be 0 (no shift) or in [1, acc_width - 1] = "
                         f"[1, {acc_width - 1}], not {out_shift}")
    return out_shift


def _signed_range(width):
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def _index_tuple(arr, flat_index):
    return tuple(int(i) for i in np.unravel_index(flat_index, arr.shape))


def _as_int64(name, x, *, ndim=None, width=64):
    """Convert ``x`` to an int64 array, checking dtype, rank and the signed ``width``-bit range.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    x : array_like
        Integer array (any numpy integer dtype, or Python ints).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    width : int
        Every value must lie in the signed ``width``-bit range.
    """
    arr = np.asarray(x)
    lo, hi = _signed_range(width)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            wanted = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {wanted} array, not an array of shape {arr.shape}")
    kind = arr.dtype.kind
    if arr.size == 0 and kind in "fO":                  # e.g. [] becomes float64
        return arr.astype(np.int64)
    if kind == "O":
        flat = arr.ravel()
        for i, v in enumerate(flat):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must hold integers, but the value at index "
                                f"{_index_tuple(arr, i)} is {v!r}")
            if not lo <= int(v) <= hi:
                raise ValueError(f"{name} value {int(v)} at index {_index_tuple(arr, i)} is "
                                 f"outside the signed {width}-bit range [{lo}, {hi}]")
        return arr.astype(np.int64)
    if kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, not of dtype {arr.dtype}")
    info = np.iinfo(arr.dtype)
    bad = None
    if info.max > hi:
        bad = arr > hi
    if kind == "i" and info.min < lo:
        low = arr < lo
        bad = low if bad is None else (bad | low)
    if bad is not None and bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        v = int(arr.ravel()[i])
        raise ValueError(f"{name} value {v} at index {_index_tuple(arr, i)} is outside the "
                         f"signed {width}-bit range [{lo}, {hi}]")
    return arr.astype(np.int64)


def _wrap64(x, width):
    """Wrap an int64 array to ``width`` bits (no checks)."""
    if width == 64:
        return x
    shift = np.uint64(64 - width)
    return ((x.view(np.uint64) << shift).view(np.int64)) >> np.int64(64 - width)


# Public API -------------------------------------------------------------------------------------


def wrap(x, width):
    """Reduce integers to signed two's complement ``width``-bit values.

    Parameters
    ----------
    x : array_like of int
        Integers of any numpy integer dtype, or Python ints of any size.
    width : int
        Target width in bits, ``1 <= width <= 64``.

    Returns
    -------
    numpy.ndarray of int64
        ``((x + 2**(width-1)) mod 2**width) - 2**(width-1)``, same shape as ``x``.
    """
    width = _check_int("width", width, 1, 64)
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if arr.size == 0 and kind in "fO":                  # e.g. [] becomes float64
        return arr.astype(np.int64)
    if kind == "O":
        half, full = 1 << (width - 1), 1 << width
        out = np.empty(arr.shape, dtype=np.int64)
        flat_in, flat_out = arr.ravel(), out.reshape(-1)
        for i, v in enumerate(flat_in):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"x must hold integers, but the value at index "
                                f"{_index_tuple(arr, i)} is {v!r}")
            flat_out[i] = ((int(v) + half) % full) - half
        return out
    if kind not in "iu":
        raise TypeError(f"x must be an array of integers, not of dtype {arr.dtype}")
    if arr.dtype == np.uint64:
        arr64 = arr.view(np.int64).copy()
    else:
        arr64 = arr.astype(np.int64)
    return _wrap64(arr64, width)


def _conv_checked(ifmap, weights, bias, stride, pad, groups, data_width, acc_width):
    """Validate conv arguments; return int64 arrays and the option values."""
    data_width, acc_width = _check_widths(data_width, acc_width)
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    groups = _check_int("groups", groups, 1)
    ifmap = _as_int64("ifmap", ifmap, ndim=4, width=data_width)
    weights = _as_int64("weights", weights, ndim=4, width=data_width)
    bias = _as_int64("bias", bias, ndim=1, width=acc_width)
    n, c, h, w = ifmap.shape
    m, cg, r, s = weights.shape
    for label, value in (("ifmap batch N", n), ("ifmap channels C", c), ("ifmap height H", h),
                         ("ifmap width W", w), ("weights output channels M", m),
                         ("weights height R", r), ("weights width S", s)):
        if value < 1:
            raise ValueError(f"{label} must be at least 1, not {value}")
    if c % groups:
        raise ValueError(f"ifmap channels C = {c} must be divisible by groups = {groups}")
    if m % groups:
        raise ValueError(f"weights output channels M = {m} must be divisible by groups = {groups}")
    if cg != c // groups:
        raise ValueError(f"weights channel dimension must be C / groups = {c} / {groups} = "
                         f"{c // groups}, not {cg} (weights shape {weights.shape})")
    if bias.shape != (m,):
        raise ValueError(f"bias must have shape (M,) = ({m},), not {bias.shape}")
    e = (h + 2 * pad - r) // stride + 1
    f = (w + 2 * pad - s) // stride + 1
    if h + 2 * pad < r or e < 1:
        raise ValueError(f"output height E = (H + 2*pad - R) // stride + 1 must be at least 1, but "
                         f"H + 2*pad = {h + 2 * pad} is smaller than R = {r}")
    if w + 2 * pad < s or f < 1:
        raise ValueError(f"output width F = (W + 2*pad - S) // stride + 1 must be at least 1, but "
                         f"W + 2*pad = {w + 2 * pad} is smaller than S = {s}")
    return ifmap, weights, bias, stride, pad, groups, data_width, acc_width, e, f


def _conv_acc_unchecked(ifmap, weights, bias, stride, pad, groups, acc_width, e, f):
    n, c, _, _ = ifmap.shape
    m, cg, r, s = weights.shape
    mg = m // groups
    if pad:
        ifmap = np.pad(ifmap, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # (N, C, Hp-R+1, Wp-S+1, R, S) view, then keep every stride-th window.
    windows = sliding_window_view(ifmap, (r, s), axis=(2, 3))
    windows = windows[:, :, : (e - 1) * stride + 1 : stride, : (f - 1) * stride + 1 : stride]
    k = cg * r * s
    # Largest possible |partial sum| of one dot product decides whether float64 BLAS is exact.
    max_x = int(np.abs(ifmap).max()) if ifmap.size else 0
    max_w = int(np.abs(weights).max()) if weights.size else 0
    exact_in_float = k * max_x * max_w < _FLOAT_EXACT_LIMIT
    dtype = np.float64 if exact_in_float else np.int64
    acc = np.empty((n, m, e, f), dtype=np.int64)
    for g in range(groups):
        cols = windows[:, g * cg : (g + 1) * cg]                    # (N, Cg, E, F, R, S)
        cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * e * f, k).astype(dtype)
        wmat = weights[g * mg : (g + 1) * mg].reshape(mg, k).astype(dtype)
        prod = cols @ wmat.T                                        # (N*E*F, Mg)
        if exact_in_float:
            prod = prod.astype(np.int64)
        acc[:, g * mg : (g + 1) * mg] = prod.reshape(n, e, f, mg).transpose(0, 3, 1, 2)
    acc += bias[None, :, None, None]                                 # wraps modulo 2**64
    return _wrap64(acc, acc_width)


def conv2d_acc(ifmap, weights, bias, *, stride=1, pad=0, groups=1, data_width=16, acc_width=32):
    """Accumulators of a grouped 2-D convolution, wrapped to ``acc_width`` bits.

    Parameters
    ----------
    ifmap : array_like of int, shape (N, C, H, W)
        Input feature maps, signed ``data_width``-bit values.
    weights : array_like of int, shape (M, C // groups, R, S)
        Filters, signed ``data_width``-bit values.
    bias : array_like of int, shape (M,)
        Per-output-channel bias, signed ``acc_width``-bit values.
    stride : int, optional
        Convolution stride ``U >= 1`` (both directions).
    pad : int, optional
        Zero padding ``P >= 0`` on all four sides.
    groups : int, optional
        Number of groups ``G``; ``C`` and ``M`` must be divisible by it.
    data_width : int, optional
        Width of ifmap and weight values, ``2 <= data_width <= 32``.
    acc_width : int, optional
        Accumulator width, ``2 * data_width <= acc_width <= 64``.

    Returns
    -------
    numpy.ndarray of int64, shape (N, M, E, F)
        ``bias + sum(ifmap * weights)`` reduced to signed ``acc_width`` bits, with
        ``E = (H + 2P - R) // U + 1`` and ``F = (W + 2P - S) // U + 1``.

    Raises
    ------
    TypeError
        For non-integer arrays or options.
    ValueError
        For inconsistent shapes, out-of-range values or options, or an empty output.
    """
    ifmap, weights, bias, stride, pad, groups, _, acc_width, e, f = _conv_checked(
        ifmap, weights, bias, stride, pad, groups, data_width, acc_width)
    return _conv_acc_unchecked(ifmap, weights, bias, stride, pad, groups, acc_width, e, f)


def _requantize_unchecked(acc, out_shift, data_width, relu):
    if out_shift > 0:
        # floor((a + 2**(k-1)) / 2**k) without forming a + 2**(k-1), which could overflow int64.
        y = (acc >> np.int64(out_shift)) + ((acc >> np.int64(out_shift - 1)) & np.int64(1))
    else:
        y = acc.copy()
    lo, hi = _signed_range(data_width)
    np.clip(y, lo, hi, out=y)
    if relu:
        np.maximum(y, 0, out=y)
    return y


def requantize(acc, *, out_shift=0, data_width=16, relu=False):
    """Round, saturate and optionally rectify accumulators to ``data_width``-bit outputs.

    Parameters
    ----------
    acc : array_like of int
        Accumulator values, any shape; each must fit in signed 64 bits.
    out_shift : int, optional
        Right shift ``k`` with round half up: ``(acc + 2**(k-1)) >> k`` for ``k > 0``, computed
        exactly for the whole int64 range. ``0 <= out_shift <= 63``.
    data_width : int, optional
        Output width, ``2 <= data_width <= 32``; results saturate to its signed range.
    relu : bool, optional
        Clamp negative results to 0 (after saturation).

    Returns
    -------
    numpy.ndarray of int64
        Requantised values, same shape as ``acc``.
    """
    out_shift = _check_int("out_shift", out_shift, 0, 63)
    data_width = _check_int("data_width", data_width, 2, 32)
    relu = _check_bool("relu", relu)
    acc = _as_int64("acc", acc, width=64)
    return _requantize_unchecked(acc, out_shift, data_width, relu)


def conv2d(ifmap, weights, bias, *, stride=1, pad=0, groups=1, out_shift=0, relu=False,
           data_width=16, acc_width=32):
    """Grouped 2-D convolution with requantisation: the full layer output.

    Parameters
    ----------
    ifmap, weights, bias, stride, pad, groups, data_width, acc_width
        As for :func:`conv2d_acc`.
    out_shift : int, optional
        Rounding right shift applied to the accumulators: 0, or ``1 <= out_shift < acc_width``.
    relu : bool, optional
        Clamp negative outputs to 0.

    Returns
    -------
    numpy.ndarray of int64, shape (N, M, E, F)
        ``requantize(conv2d_acc(...), out_shift=out_shift, data_width=data_width, relu=relu)``.
    """
    ifmap, weights, bias, stride, pad, groups, data_width, acc_width, e, f = _conv_checked(
        ifmap, weights, bias, stride, pad, groups, data_width, acc_width)
    out_shift = _check_out_shift(out_shift, acc_width)
    relu = _check_bool("relu", relu)
    acc = _conv_acc_unchecked(ifmap, weights, bias, stride, pad, groups, acc_width, e, f)
    return _requantize_unchecked(acc, out_shift, data_width, relu)


def fc(x, weights, bias, *, stride=1, pad=0, groups=1, out_shift=0, relu=False, data_width=16,
       acc_width=32):
    """Fully connected layer, computed as the convolution with ``R = H`` and ``S = W``.

    Parameters
    ----------
    x : array_like of int, shape (N, C) or (N, C, H, W)
        Input vectors or feature maps; a 2-D ``x`` means ``H = W = 1``.
    weights : array_like of int, shape (M, C // groups) or (M, C // groups, H, W)
        One filter per output, covering the whole input.
    bias : array_like of int, shape (M,)
        Per-output bias.
    stride, pad : int, optional
        Accepted for symmetry with :func:`conv2d`; they must leave a 1 x 1 output, i.e.
        ``2 * pad < stride`` (``pad = 0`` always does).
    groups, out_shift, relu, data_width, acc_width
        As for :func:`conv2d`.

    Returns
    -------
    numpy.ndarray of int64, shape (N, M)
        Requantised outputs.
    """
    x_arr = np.asarray(x)
    w_arr = np.asarray(weights)
    if x_arr.ndim not in (2, 4):
        raise ValueError(f"x must be a 2-D (N, C) or 4-D (N, C, H, W) array, "
                         f"not an array of shape {x_arr.shape}")
    if w_arr.ndim not in (2, 4):
        raise ValueError(f"weights must be a 2-D (M, C) or 4-D (M, C, H, W) array, "
                         f"not an array of shape {w_arr.shape}")
    if x_arr.ndim == 2:
        x_arr = x_arr[:, :, None, None]
    if w_arr.ndim == 2:
        w_arr = w_arr[:, :, None, None]
    if x_arr.shape[2:] != w_arr.shape[2:]:
        raise ValueError(f"fc weights spatial size (R, S) = {w_arr.shape[2:]} must equal the "
                         f"input size (H, W) = {x_arr.shape[2:]}")
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    if 2 * pad >= stride:
        raise ValueError(f"fc needs a 1 x 1 output, so 2 * pad must be less than stride = "
                         f"{stride}; pad = {pad} is too large")
    out = conv2d(x_arr, w_arr, bias, stride=stride, pad=pad, groups=groups, out_shift=out_shift,
                 relu=relu, data_width=data_width, acc_width=acc_width)
    return out[:, :, 0, 0]


def _pair(name, value):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, not {value!r}")
        return (_check_int(f"{name}[0]", value[0], 1), _check_int(f"{name}[1]", value[1], 1))
    v = _check_int(name, value, 1)
    return v, v


def maxpool2d(x, *, kernel, stride, pad=0):
    """2-D max pooling; padded positions never win.

    Parameters
    ----------
    x : array_like of int, shape (N, C, H, W)
        Input feature maps (any signed 64-bit values).
    kernel : int or (int, int)
        Window size ``(KH, KW)``, each at least 1.
    stride : int or (int, int)
        Window step, each at least 1.
    pad : int, optional
        Padding on all four sides, ``0 <= pad < min(KH, KW)`` so every window holds at least one
        real value. Padded positions are ignored.

    Returns
    -------
    numpy.ndarray of int64, shape (N, C, E, F)
        Window maxima, ``E = (H + 2*pad - KH) // stride_h + 1`` (likewise ``F``).
    """
    kh, kw = _pair("kernel", kernel)
    sh, sw = _pair("stride", stride)
    pad = _check_int("pad", pad, 0)
    if pad >= min(kh, kw):
        raise ValueError(f"pad must be less than the kernel size {min(kh, kw)} so every window "
                         f"holds a real value, not {pad}")
    x = _as_int64("x", x, ndim=4, width=64)
    n, c, h, w = x.shape
    if h + 2 * pad < kh:
        raise ValueError(f"x height H + 2*pad = {h + 2 * pad} is smaller than the kernel "
                         f"height {kh}")
    if w + 2 * pad < kw:
        raise ValueError(f"x width W + 2*pad = {w + 2 * pad} is smaller than the kernel "
                         f"width {kw}")
    e = (h + 2 * pad - kh) // sh + 1
    f = (w + 2 * pad - kw) // sw + 1
    if pad:
        fill = np.iinfo(np.int64).min    # never beats a real value (ties give the same result)
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, : (e - 1) * sh + 1 : sh, : (f - 1) * sw + 1 : sw]
    return windows.max(axis=(4, 5)).astype(np.int64)


def conv1d_row(ifmap_rows, filters, psum_in, *, stride, acc_width):
    """The processing-element primitive: 1-D convolution of ``q`` rows with ``p`` filters.

    Parameters
    ----------
    ifmap_rows : array_like of int, shape (q, Wrow)
        One ifmap row per input channel.
    filters : array_like of int, shape (p, q, S)
        One filter row per (filter, channel).
    psum_in : array_like of int, shape (F, p)
        Incoming partial sums, ``F = (Wrow - S) // stride + 1``.
    stride : int
        Step along the row, at least 1.
    acc_width : int
        Partial-sum width, ``2 <= acc_width <= 64``.

    Returns
    -------
    numpy.ndarray of int64, shape (F, p)
        ``wrap(psum_in[f, k] + sum_{c, s} ifmap_rows[c, f*stride + s] * filters[k, c, s],
        acc_width)``.
    """
    stride = _check_int("stride", stride, 1)
    acc_width = _check_int("acc_width", acc_width, 2, 64)
    rows = _as_int64("ifmap_rows", ifmap_rows, ndim=2)
    filt = _as_int64("filters", filters, ndim=3)
    psum = _as_int64("psum_in", psum_in, ndim=2)
    q, wrow = rows.shape
    p, qf, s = filt.shape
    if qf != q:
        raise ValueError(f"filters channel dimension must equal the number of ifmap rows q = {q}, "
                         f"not {qf} (filters shape {filt.shape})")
    if s < 1 or wrow < s:
        raise ValueError(f"ifmap row width Wrow = {wrow} must be at least the filter width "
                         f"S = {s} >= 1")
    f = (wrow - s) // stride + 1
    if psum.shape != (f, p):
        raise ValueError(f"psum_in must have shape (F, p) = ({f}, {p}) with "
                         f"F = (Wrow - S) // stride + 1, not {psum.shape}")
    windows = sliding_window_view(rows, s, axis=1)[:, : (f - 1) * stride + 1 : stride]  # (q, F, S)
    out = np.einsum("cfs,kcs->fk", windows, filt, dtype=np.int64) + psum
    return _wrap64(out, acc_width)
