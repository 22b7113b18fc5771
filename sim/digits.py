"""A small CNN trained on real handwritten digits, quantised to the accelerator's numeric contract.

The network is trained here, in numpy, on scikit-learn's bundled handwritten-digits data set
(1797 greyscale 8 x 8 images with 17 grey levels, scanned from 43 writers; no download), then
quantised so that its inference runs bit-exactly with :mod:`rsaccel.sim.golden`. Its per-layer
activations are the real data the zero-gating and run-length measurements need, regenerated from
a seed in a few seconds instead of being committed.

Network (per image; every CONV and FC layer runs on the accelerator, pooling on the host)::

    image   1 x 8 x 8    pixels 0..16
    conv1   1 -> 8,  3 x 3, pad 1, ReLU     8 x 8 x 8
    conv2   8 -> 16, 3 x 3, pad 1, ReLU    16 x 8 x 8  -> max-pool 2 x 2 -> 16 x 4 x 4
    conv3  16 -> 16, 3 x 3, pad 1, ReLU    16 x 4 x 4  -> max-pool 2 x 2 -> 16 x 2 x 2
    fc     64 -> 10 (a 2 x 2 convolution)  logits

Every filter is at most 3 rows high so each layer fits the ``tiny`` preset's 3-row array.

Training: float64, He-initialised from the seed, softmax cross-entropy with a small weight decay,
Adam with a step-decayed learning rate over shuffled mini-batches (order from the seed). The split
(75 % train, 25 % held-out test, stratified by class) is fixed and does not depend on the seed.

Quantisation (power-of-two scales, no calibration search): a layer's input ``a`` is held as the
integer ``A = a * 2**f_in`` and its weights as ``Wq = round(w * 2**g)``, so the accumulator has
``f_in + g`` fraction bits; the bias becomes ``round(b * 2**(f_in + g))`` and the layer's
``out_shift = f_in + g - f_out`` brings the result to the next layer's ``f_out``. The input image
is ``pixels / 16``, so ``A = pixels`` with ``f_in = 4``. ``g`` is the largest that keeps every
``|Wq| <= WEIGHT_LIMIT``; ``f_out`` the largest that keeps the largest float activation of the
training set at most ``ACT_LIMIT``, leaving an eighth of the int16 range as headroom before
saturation. Quantised inference is :func:`rsaccel.sim.golden.conv2d` (requantise and ReLU
included) and :func:`rsaccel.sim.golden.maxpool2d`, layer by layer.

Training runs on one BLAS thread and is deterministic from its seed for a given numpy and BLAS
build (another BLAS may round float sums differently, so the exact weights, not the procedure,
are machine specific); :func:`digits_network` caches its result per seed within a process. It
takes about 5-10 s on one core.
"""

from dataclasses import dataclass
import functools
import math
import time
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..gen.compiler import Layer, iter_blocks
from .golden import _check_int, conv2d, maxpool2d

__all__ = ["ARCHITECTURE", "EPOCHS", "WEIGHT_LIMIT", "ACT_LIMIT", "INPUT_FRAC_BITS",
           "DigitsSplit", "QuantLayer", "DigitsNetwork", "DigitsLayer", "load_split",
           "train_float", "float_forward", "quantise", "quantised_forward", "digits_network",
           "digits_layers", "exact_gated_macs"]

#: ``(name, C, M, R, S, pad, relu, pool)`` per accelerator layer; ``pool`` is the host max-pool
#: window (and stride) applied to the layer's output, 0 for none. ``fc`` has ``R = S = 2``.
ARCHITECTURE = (
    ("conv1", 1, 8, 3, 3, 1, True, 0),
    ("conv2", 8, 16, 3, 3, 1, True, 2),
    ("conv3", 16, 16, 3, 3, 1, True, 2),
    ("fc", 16, 10, 2, 2, 0, False, 0),
)
#: Training epochs of :func:`digits_network`.
EPOCHS = 30
#: Largest quantised weight magnitude (12-bit weights).
WEIGHT_LIMIT = 2047
#: Largest quantised activation of the training set (int16 range / 8).
ACT_LIMIT = 4096
#: Fraction bits of the input image: the float network sees ``pixels / 16``.
INPUT_FRAC_BITS = 4
#: Held-out fraction of each class, and the seed of the (fixed) split.
TEST_FRACTION = 0.25
SPLIT_SEED = 20161
IMAGE_SIZE = 8
CLASSES = 10


# Data ------------------------------------------------------------------------------------------


class DigitsSplit(NamedTuple):
    """The data set as integers: ``images`` (1797, 8, 8) pixels 0..16, ``labels`` (1797,), and
    the sorted indices of the training and held-out test images."""
    images: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    test: np.ndarray


@functools.cache
def load_split():
    """scikit-learn's bundled digits, split into training and held-out test images.

    Returns
    -------
    DigitsSplit
        Read-only arrays. The split is stratified: :data:`TEST_FRACTION` of every class (rounded)
        is held out, chosen by a generator seeded with :data:`SPLIT_SEED`.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.rint(data.images).astype(np.int64)
    if not np.array_equal(images, data.images) or images.min() < 0 or images.max() > 16:
        raise ValueError("the digits images are expected to hold integer pixels 0..16")
    labels = data.target.astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for digit in range(CLASSES):
        idx = np.flatnonzero(labels == digit)
        test.append(rng.permutation(idx)[:round(TEST_FRACTION * idx.size)])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(labels.size), test)
    for arr in (images, labels, train, test):
        arr.setflags(write=False)
    return DigitsSplit(images, labels, train, test)


# Float network ---------------------------------------------------------------------------------


def _im2col(x, r, s, pad):
    """``(N*E*F, C*R*S)`` patches of ``x`` (N, C, H, W), stride 1, and the output size."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (r, s), axis=(2, 3))          # (N, C, E, F, R, S)
    e, f = win.shape[2], win.shape[3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * e * f, c * r * s), e, f


def _col2im(dcols, shape, r, s, pad, e, f):
    """Adjoint of :func:`_im2col`: scatter-add patch gradients back onto the input."""
    n, c, h, w = shape
    d = dcols.reshape(n, e, f, c, r, s)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(r):
        for j in range(s):
            dxp[:, :, i:i + e, j:j + f] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + w]


def _conv_forward(x, w, b, pad):
    m, _, r, s = w.shape
    cols, e, f = _im2col(x, r, s, pad)
    out = cols @ w.reshape(m, -1).T + b
    return out.reshape(x.shape[0], e, f, m).transpose(0, 3, 1, 2), (cols, e, f)


def _conv_backward(dout, x_shape, w, cache, pad):
    cols, e, f = cache
    m, _, r, s = w.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, m)
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(axis=0)
    dx = _col2im(d @ w.reshape(m, -1), x_shape, r, s, pad, e, f)
    return dx, dw, db


def _pool_forward(x, k):
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // k, k, w // k, k).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, h // k, w // k, k * k)
    arg = blocks.argmax(axis=-1)
    return np.take_along_axis(blocks, arg[..., None], axis=-1)[..., 0], arg


def _pool_backward(dout, arg, shape, k):
    n, c, h, w = shape
    d = np.zeros((n, c, h // k, w // k, k * k))
    np.put_along_axis(d, arg[..., None], dout[..., None], axis=-1)
    d = d.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5)
    return d.reshape(shape)


def float_forward(params, x, *, keep=False):
    """Float inference of the network.

    Parameters
    ----------
    params : dict
        ``{name: (weights, bias)}`` for every layer of :data:`ARCHITECTURE` (float arrays).
    x : numpy.ndarray, shape (N, 1, 8, 8)
        Input images scaled to ``pixels / 16``.
    keep : bool, optional
        Also return every layer's float output after ReLU (before pooling).

    Returns
    -------
    numpy.ndarray, shape (N, 10)
        Logits; with ``keep``, ``(logits, {name: activation})``.
    """
    acts = {}
    a = x
    for name, _, _, _, _, pad, relu, pool in ARCHITECTURE:
        w, b = params[name]
        z, _ = _conv_forward(a, w, b, pad)
        if relu:
            z = np.maximum(z, 0.0)
        acts[name] = z
        a = _pool_forward(z, pool)[0] if pool else z
    logits = a[:, :, 0, 0]
    return (logits, acts) if keep else logits


def _loss_and_grads(params, x, y, weight_decay):
    caches = []
    a = x
    for name, _, _, _, _, pad, relu, pool in ARCHITECTURE:
        w, b = params[name]
        z, cache = _conv_forward(a, w, b, pad)
        entry = {"x_shape": a.shape, "cache": cache}
        if relu:
            entry["mask"] = z > 0
            z = z * entry["mask"]
        if pool:
            entry["pool_shape"] = z.shape
            z, entry["arg"] = _pool_forward(z, pool)
        caches.append(entry)
        a = z
    logits = a[:, :, 0, 0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -logp[np.arange(n), y].mean()
    d = np.exp(logp)
    d[np.arange(n), y] -= 1.0
    d = (d / n)[:, :, None, None]
    grads = {}
    for (name, _, _, _, _, pad, relu, pool), entry in zip(reversed(ARCHITECTURE),
                                                          reversed(caches)):
        w, _ = params[name]
        if pool:
            d = _pool_backward(d, entry["arg"], entry["pool_shape"], pool)
        if relu:
            d = d * entry["mask"]
        d, dw, db = _conv_backward(d, entry["x_shape"], w, entry["cache"], pad)
        loss += 0.5 * weight_decay * float((w * w).sum())
        grads[name] = (dw + weight_decay * w, db)
    return loss, grads


def train_float(seed=0, *, epochs=EPOCHS, batch=32, lr=3e-3, weight_decay=1e-4):
    """Train the float network on the training split.

    Parameters
    ----------
    seed : int, optional
        Seeds the weight initialisation and the mini-batch order (not the split).
    epochs : int, optional
        Passes over the training images; the learning rate drops 10x after 60 % and again after
        85 % of them.
    batch : int, optional
        Mini-batch size.
    lr : float, optional
        Adam's initial learning rate.
    weight_decay : float, optional
        L2 penalty on the weights (not the biases).

    Returns
    -------
    dict
        ``{name: (weights, bias)}`` float64 arrays, weights ``(M, C, R, S)``.
    """
    seed = _check_int("seed", seed, 0)
    epochs = _check_int("epochs", epochs, 1)
    batch = _check_int("batch", batch, 1)
    # The matrices are small: one BLAS thread is faster than several on a shared machine, and
    # the result cannot depend on the thread count. (threadpoolctl comes with scikit-learn.)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(seed, epochs, batch, lr, weight_decay)


def _train(seed, epochs, batch, lr, weight_decay):
    split = load_split()
    x = (split.images[split.train] / 16.0)[:, None]
    y = split.labels[split.train]
    rng = np.random.default_rng(seed)
    params = {}
    for name, c, m, r, s, _, _, _ in ARCHITECTURE:
        fan_in = c * r * s
        params[name] = (rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(m, c, r, s)),
                        np.zeros(m))
    moments = {name: [np.zeros_like(p) for p in wb for _ in (0, 1)]
               for name, wb in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for epoch in range(epochs):
        rate = lr * (0.1 if epoch >= 0.6 * epochs else 1.0) * (0.1 if epoch >= 0.85 * epochs
                                                               else 1.0)
        order = rng.permutation(y.size)
        for start in range(0, y.size, batch):
            idx = order[start:start + batch]
            _, grads = _loss_and_grads(params, x[idx], y[idx], weight_decay)
            step += 1
            corr1, corr2 = 1.0 - beta1 ** step, 1.0 - beta2 ** step
            new = {}
            for name, (w, b) in params.items():
                mom = moments[name]
                updated = []
                for k, (p, g) in enumerate(zip((w, b), grads[name])):
                    mom[2 * k] = beta1 * mom[2 * k] + (1 - beta1) * g
                    mom[2 * k + 1] = beta2 * mom[2 * k + 1] + (1 - beta2) * g * g
                    updated.append(p - rate * (mom[2 * k] / corr1)
                                   / (np.sqrt(mom[2 * k + 1] / corr2) + eps))
                new[name] = tuple(updated)
            params = new
    return params


# Quantised network -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantLayer:
    """One quantised accelerator layer (weights ``(M, C, R, S)`` and bias ``(M,)`` as int64).

    ``in_frac``, ``w_frac`` and ``out_frac`` are the power-of-two scales (fraction bits) of its
    input, weights and output; ``out_shift = in_frac + w_frac - out_frac``. ``pool`` is the host
    max-pool window applied to its output (0 for none).
    """
    name: str
    C: int
    M: int
    R: int
    S: int
    pad: int
    relu: bool
    pool: int
    weights: np.ndarray
    bias: np.ndarray
    in_frac: int
    w_frac: int
    out_frac: int

    @property
    def out_shift(self):
        return self.in_frac + self.w_frac - self.out_frac

    def layer(self, n, h, w):
        """The :class:`~rsaccel.gen.compiler.Layer` of a batch of ``n`` inputs of ``h x w``."""
        return Layer(N=n, C=self.C, M=self.M, H=h, W=w, R=self.R, S=self.S, stride=1,
                     pad=self.pad, groups=1, relu=self.relu, out_shift=self.out_shift)


def _pow2_bits(limit, largest):
    """Largest integer ``k`` with ``largest * 2**k <= limit`` (``largest > 0``)."""
    k = math.floor(math.log2(limit / largest))
    while largest * 2.0 ** (k + 1) <= limit:
        k += 1
    while largest * 2.0 ** k > limit:
        k -= 1
    return k


def quantise(params, calibration):
    """Quantise float parameters to the numeric contract with power-of-two scales.

    Parameters
    ----------
    params : dict
        Float parameters from :func:`train_float`.
    calibration : numpy.ndarray of int, shape (N, 8, 8)
        Images (pixels 0..16) whose float activations set each layer's output scale.

    Returns
    -------
    tuple of QuantLayer
        One per entry of :data:`ARCHITECTURE`.

    Raises
    ------
    ValueError
        If a layer would need a negative ``out_shift`` (its output needs more fraction bits than
        its accumulator has).
    """
    _, acts = float_forward(params, (np.asarray(calibration) / 16.0)[:, None], keep=True)
    layers = []
    in_frac = INPUT_FRAC_BITS
    for name, c, m, r, s, pad, relu, pool in ARCHITECTURE:
        w, b = params[name]
        w_frac = _pow2_bits(WEIGHT_LIMIT, float(np.abs(w).max()))
        out_frac = _pow2_bits(ACT_LIMIT, float(np.abs(acts[name]).max()))
        if in_frac + w_frac - out_frac < 0:
            raise ValueError(f"layer {name}: out_shift = {in_frac} + {w_frac} - {out_frac} "
                             f"would be negative")
        wq = np.rint(w * 2.0 ** w_frac).astype(np.int64)
        bq = np.rint(b * 2.0 ** (in_frac + w_frac)).astype(np.int64)
        for arr in (wq, bq):
            arr.setflags(write=False)
        layers.append(QuantLayer(name=name, C=c, M=m, R=r, S=s, pad=pad, relu=relu, pool=pool,
                                 weights=wq, bias=bq, in_frac=in_frac, w_frac=w_frac,
                                 out_frac=out_frac))
        in_frac = out_frac
    return tuple(layers)


def quantised_forward(qlayers, images):
    """Integer inference with the golden model, layer by layer.

    Parameters
    ----------
    qlayers : sequence of QuantLayer
        From :func:`quantise`.
    images : array_like of int, shape (N, 8, 8)
        Pixels 0..16.

    Returns
    -------
    ifmaps : list of numpy.ndarray of int64
        The ifmap ``(N, C, H, W)`` of every layer: the images, then each layer's output after
        host pooling.
    logits : numpy.ndarray of int64, shape (N, 10)
        The last layer's output.
    """
    x = np.asarray(images, dtype=np.int64)[:, None]
    ifmaps = []
    for q in qlayers:
        ifmaps.append(x)
        y = conv2d(x, q.weights, q.bias, stride=1, pad=q.pad, relu=q.relu,
                   out_shift=q.out_shift)
        x = maxpool2d(y, kernel=q.pool, stride=q.pool) if q.pool else y
    return ifmaps, x[:, :, 0, 0]


@dataclass(frozen=True)
class DigitsNetwork:
    """A trained and quantised digits network and its held-out accuracies.

    Attributes
    ----------
    seed : int
        Training seed.
    params : dict
        Float parameters ``{name: (weights, bias)}``.
    layers : tuple of QuantLayer
        The quantised accelerator layers.
    float_accuracy, quant_accuracy : float
        Top-1 accuracy of the float and of the quantised network on the held-out test images.
    train_accuracy : float
        Quantised accuracy on the training images.
    train_seconds : float
        Wall time of training and quantisation.
    """
    seed: int
    params: dict
    layers: tuple
    float_accuracy: float
    quant_accuracy: float
    train_accuracy: float
    train_seconds: float


@functools.lru_cache(maxsize=4)
def digits_network(seed=0):
    """The network trained from ``seed`` with the default settings and quantised (cached).

    Parameters
    ----------
    seed : int, optional
        Training seed (:func:`train_float`).

    Returns
    -------
    DigitsNetwork
    """
    seed = _check_int("seed", seed, 0)
    start = time.perf_counter()
    split = load_split()
    params = train_float(seed)
    layers = quantise(params, split.images[split.train])
    seconds = time.perf_counter() - start
    test_x, test_y = split.images[split.test], split.labels[split.test]
    float_pred = float_forward(params, (test_x / 16.0)[:, None]).argmax(axis=1)
    quant_pred = quantised_forward(layers, test_x)[1].argmax(axis=1)
    train_pred = quantised_forward(layers, split.images[split.train])[1].argmax(axis=1)
    return DigitsNetwork(
        seed=seed, params=params, layers=layers,
        float_accuracy=float(np.mean(float_pred == test_y)),
        quant_accuracy=float(np.mean(quant_pred == test_y)),
        train_accuracy=float(np.mean(train_pred == split.labels[split.train])),
        train_seconds=seconds)


class DigitsLayer(NamedTuple):
    """One accelerator layer of the digits network with its real input.

    ``ifmap`` ``(N, C, H, W)`` is the quantised activation of the previous layer (after host
    pooling), or the images for ``conv1``; ``weights`` ``(M, C, R, S)`` and ``bias`` ``(M,)``
    are int64; ``pool`` is the host max-pool window applied to the layer's output (0 for none).
    """
    name: str
    layer: Layer
    ifmap: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    pool: int


def digits_layers(n_images, seed=0, *, first=0):
    """Every accelerator layer of the digits network on ``n_images`` held-out test images.

    Parameters
    ----------
    n_images : int
        Batch size ``N``, at least 1.
    seed : int, optional
        Training seed of the network (:func:`digits_network`).
    first : int, optional
        Index of the first image within the held-out test split.

    Returns
    -------
    list of DigitsLayer
        In network order; each layer's ``ifmap`` is the real quantised activation of the one
        before it.

    Raises
    ------
    ValueError
        If the requested images run past the end of the test split.
    """
    n_images = _check_int("n_images", n_images, 1)
    first = _check_int("first", first, 0)
    split = load_split()
    if first + n_images > split.test.size:
        raise ValueError(f"first + n_images = {first + n_images} exceeds the "
                         f"{split.test.size} held-out test images")
    net = digits_network(seed)
    images = split.images[split.test[first:first + n_images]]
    ifmaps, _ = quantised_forward(net.layers, images)
    out = []
    for q, x in zip(net.layers, ifmaps):
        layer = q.layer(n_images, x.shape[2], x.shape[3])
        out.append(DigitsLayer(q.name, layer, x, q.weights, q.bias, q.pool))
    return out


# Zero operands ---------------------------------------------------------------------------------


def exact_gated_macs(layer, ifmap, mapping=None):
    """Number of MACs of ``layer`` whose ifmap operand is zero, zero padding included.

    The accelerator streams the zero-padded ifmap (the compiler pads it before packing), so a
    MAC on a padded position is executed with a zero operand and gated like any other.

    Parameters
    ----------
    layer : rsaccel.gen.compiler.Layer
        The layer.
    ifmap : array_like of int, shape (N, C, H, W)
        Its input, before padding.
    mapping : rsaccel.gen.compiler.Mapping, optional
        If given, count what the array executes under this mapping: a last filter block that
        is not full runs zero-padded filters, whose MAC slots see the same ifmap operands. By
        default only the layer's ``M`` filters count.

    Returns
    -------
    int
        ``sum over n, m, e, f, c (of m's group), r, s of [padded[n, c, e*U + r, f*U + s] == 0]``.
    """
    x = np.asarray(ifmap)
    shape = (layer.N, layer.C, layer.H, layer.W)
    if x.shape != shape:
        raise ValueError(f"ifmap must have shape {shape}, not {x.shape}")
    U, p = layer.stride, layer.pad
    zero = np.pad(x == 0, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=True)
    rows = np.arange(layer.E) * U
    cols = np.arange(layer.F) * U
    cg = layer.C // layer.groups
    per_group = np.zeros(layer.groups, dtype=np.int64)      # zero operands seen by one filter
    for r in range(layer.R):
        for s in range(layer.S):
            tap = zero[:, :, (rows + r)[:, None], (cols + s)[None, :]]    # (N, C, E, F)
            per_group += tap.sum(axis=(0, 2, 3)).reshape(layer.groups, cg).sum(axis=1)
    if mapping is None:
        filters = layer.M // layer.groups
    else:
        # filter slots of one group, one image run and one strip (the same for every one)
        first = None
        filters = 0
        for blk in iter_blocks(layer, mapping):
            key = (blk.g, blk.n0, blk.e0)
            if first is None:
                first = key
            if key != first:
                break
            filters += blk.t * blk.p
    return int(per_group.sum()) * filters
