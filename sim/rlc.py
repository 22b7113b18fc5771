"""Run-length codec of the accelerator's compressed streams (bit-exact model).

Format
------
A stream is a sequence of ``word_width``-bit words (``word_width <= 64``). Each word holds
``pairs = (word_width - 1) // (run_width + level_width)`` (run, level) pairs; pair ``k`` occupies
bits ``[k*(run_width+level_width), (k+1)*(run_width+level_width))`` with the run (unsigned) in its
low ``run_width`` bits and the level (two's complement) in its high ``level_width`` bits. Bit
``word_width - 1`` is the last-word flag: set on the final word of a stream and only there. All
other bits are zero.

A pair stands for ``run`` zeros followed by the single value ``level`` (which may be zero).

Encoding is greedy and canonical, with ``maxrun = 2**run_width - 1``:

* before a non-zero value, while more than ``maxrun`` zeros are pending, emit ``(maxrun, 0)`` and
  take ``maxrun + 1`` off; then emit ``(pending, value)``;
* at the end, while more than ``maxrun + 1`` zeros are pending, emit ``(maxrun, 0)`` and take
  ``maxrun + 1`` off; then, if any are pending, emit ``(pending - 1, 0)``;
* unused pairs of the last word are ``(0, 0)``; an empty input is one word with only the flag.
"""

import operator

import numpy as np

from .golden import _check_int

__all__ = ["encode", "decode", "entropy_bits", "compressed_bits", "pairs_per_word"]


def _check_format(run_width, level_width, word_width):
    run_width = _check_int("run_width", run_width, 1, 62)
    level_width = _check_int("level_width", level_width, 1, 62)
    word_width = _check_int("word_width", word_width, 3, 64)
    pair = run_width + level_width
    if pair > word_width - 1:
        raise ValueError(f"run_width + level_width = {pair} must be at most word_width - 1 = "
                         f"{word_width - 1} (one pair plus the last flag)")
    return run_width, level_width, word_width


def pairs_per_word(*, run_width=5, level_width=16, word_width=64):
    """Number of (run, level) pairs in one word, ``(word_width - 1) // (run_width + level_width)``.

    Parameters
    ----------
    run_width, level_width, word_width : int, optional
        Field widths of the format (see the module docstring).

    Returns
    -------
    int
    """
    run_width, level_width, word_width = _check_format(run_width, level_width, word_width)
    return (word_width - 1) // (run_width + level_width)


def _int_values(name, x):
    """Flatten ``x`` (C order) to an int64 array; TypeError unless it holds integers."""
    arr = np.asarray(x)
    if arr.size == 0 and arr.dtype.kind in "fO":       # e.g. [] becomes float64
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "O":
        flat = arr.ravel()
        for i, v in enumerate(flat):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must hold integers, but {name}[{i}] is {v!r}")
        return [int(v) for v in flat]
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, not of dtype {arr.dtype}")
    return arr.ravel()


def encode(values, *, run_width=5, level_width=16, word_width=64):
    """Run-length encode integers into stream words.

    Parameters
    ----------
    values : array_like of int
        Values to encode, flattened in C order. Each must fit the signed ``level_width`` range.
    run_width : int, optional
        Width of the run field, ``>= 1``.
    level_width : int, optional
        Width of the level field (two's complement), ``>= 1``.
    word_width : int, optional
        Word width, ``<= 64``; ``run_width + level_width <= word_width - 1``.

    Returns
    -------
    numpy.ndarray of uint64
        The words of the stream (at least one).

    Raises
    ------
    TypeError
        For non-integer values or options.
    ValueError
        For a value outside the level range (naming its index) or an impossible format.
    """
    run_width, level_width, word_width = _check_format(run_width, level_width, word_width)
    raw = _int_values("values", values)
    lo, hi = -(1 << (level_width - 1)), (1 << (level_width - 1)) - 1
    if isinstance(raw, list):
        for i, v in enumerate(raw):
            if not lo <= v <= hi:
                raise ValueError(f"values[{i}] = {v} does not fit the signed {level_width}-bit "
                                 f"level range [{lo}, {hi}]")
        vals = np.array(raw, dtype=np.int64)
    else:
        info = np.iinfo(raw.dtype)
        bad = np.zeros(raw.shape, dtype=bool)
        if info.max > hi:
            bad |= raw > hi
        if info.min < lo:
            bad |= raw < lo
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"values[{i}] = {int(raw[i])} does not fit the signed "
                             f"{level_width}-bit level range [{lo}, {hi}]")
        vals = raw.astype(np.int64)

    maxrun = (1 << run_width) - 1
    span = maxrun + 1                       # zeros covered by one (maxrun, 0) filler pair
    n = vals.size
    nz = np.flatnonzero(vals)
    gaps = np.diff(np.concatenate(([-1], nz))) - 1            # zeros before each non-zero value
    fillers = gaps // span
    counts = fillers + 1                                       # pairs per non-zero value
    trailing = n - 1 - int(nz[-1]) if nz.size else n
    tail_pairs = -(-trailing // span)                          # ceil(trailing / span)
    body = int(counts.sum())
    total = body + tail_pairs

    runs = np.full(total, maxrun, dtype=np.int64)
    levels = np.zeros(total, dtype=np.int64)
    if nz.size:
        ends = np.cumsum(counts) - 1
        runs[ends] = gaps % span
        levels[ends] = vals[nz]
    if tail_pairs:
        runs[-1] = trailing - (tail_pairs - 1) * span - 1

    per_word = (word_width - 1) // (run_width + level_width)
    nwords = max(1, -(-total // per_word))
    pad = nwords * per_word - total
    runs = np.concatenate((runs, np.zeros(pad, dtype=np.int64))).astype(np.uint64)
    levels = np.concatenate((levels, np.zeros(pad, dtype=np.int64))).view(np.uint64)
    level_mask = np.uint64((1 << level_width) - 1)
    pair_bits = (runs | ((levels & level_mask) << np.uint64(run_width))).reshape(nwords, per_word)
    words = np.zeros(nwords, dtype=np.uint64)
    pair_width = run_width + level_width
    for k in range(per_word):
        words |= pair_bits[:, k] << np.uint64(k * pair_width)
    words[-1] |= np.uint64(1 << (word_width - 1))
    return words


def decode(words, count, *, run_width=5, level_width=16, word_width=64):
    """Decode a run-length stream back to ``count`` values.

    Parameters
    ----------
    words : array_like of int
        Stream words, each in ``[0, 2**word_width)`` (``uint64`` for 64-bit words).
    count : int
        Number of values the stream holds, ``>= 0``.
    run_width, level_width, word_width : int, optional
        Format, as for :func:`encode`.

    Returns
    -------
    numpy.ndarray of int64, shape (count,)
        The decoded values.

    Raises
    ------
    ValueError
        For a malformed stream, naming the word (and pair) where it fails: a word value wider than
        ``word_width`` or with unused bits set, no words or no last flag, a word after the last
        flag, a word starting after all values were decoded, the last flag reached with too few
        values, a pair whose ``run + 1`` overshoots the remaining count, or a non-(0, 0) pair after
        the count is reached.
    """
    run_width, level_width, word_width = _check_format(run_width, level_width, word_width)
    count = _check_int("count", count, 0)
    arr = np.asarray(words)
    if arr.ndim != 1:
        raise ValueError(f"words must be a 1-D array, not an array of shape {arr.shape}")
    raw = _int_values("words", arr)
    limit = 1 << word_width
    if isinstance(raw, list):
        for i, v in enumerate(raw):
            if not 0 <= v < limit:
                raise ValueError(f"word {i}: value {v} is outside the unsigned {word_width}-bit "
                                 f"range [0, {limit - 1}]")
        wvals = np.array(raw, dtype=np.uint64)
    else:
        bad = np.zeros(raw.shape, dtype=bool)
        if raw.dtype.kind == "i":
            bad |= raw < 0
        if np.iinfo(raw.dtype).max >= limit:
            bad |= raw >= limit
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"word {i}: value {int(raw[i])} is outside the unsigned "
                             f"{word_width}-bit range [0, {limit - 1}]")
        wvals = raw.astype(np.uint64)
    nwords = wvals.size
    if nwords == 0:
        raise ValueError("word 0: missing last flag, the stream has no words")

    per_word = (word_width - 1) // (run_width + level_width)
    pair_width = run_width + level_width
    used_bits = per_word * pair_width
    flag_bit = word_width - 1
    flags = ((wvals >> np.uint64(flag_bit)) & np.uint64(1)).astype(bool).tolist()
    spare_mask = ((1 << flag_bit) - 1) ^ ((1 << used_bits) - 1)
    spare = (wvals & np.uint64(spare_mask)) != 0
    # Unpack every pair: runs and sign-extended levels, shape (nwords, per_word).
    shifts = np.arange(per_word, dtype=np.uint64) * np.uint64(pair_width)
    pairs = (wvals[:, None] >> shifts[None, :]) & np.uint64((1 << pair_width) - 1)
    runs = (pairs & np.uint64((1 << run_width) - 1)).astype(np.int64)
    lev_u = (pairs >> np.uint64(run_width)).astype(np.int64)
    levels = lev_u - ((lev_u >> (level_width - 1)) << level_width)
    runs_l, levels_l = runs.tolist(), levels.tolist()
    spare_l = spare.tolist()

    positions, values = [], []
    produced = 0
    for i in range(nwords):
        if spare_l[i]:
            raise ValueError(f"word {i}: unused bits [{used_bits}, {flag_bit}) are not zero")
        if i > 0 and produced == count:
            raise ValueError(f"word {i}: all {count} values were decoded in word {i - 1}, which "
                             f"lacks the last flag")
        for k in range(per_word):
            run, level = runs_l[i][k], levels_l[i][k]
            if produced == count:
                if run or level:
                    raise ValueError(f"word {i}, pair {k}: pair (run={run}, level={level}) follows "
                                     f"the last of the {count} values; only (0, 0) may pad")
                continue
            if produced + run + 1 > count:
                raise ValueError(f"word {i}, pair {k}: run + 1 = {run + 1} values overshoot the "
                                 f"{count - produced} remaining of count {count}")
            produced += run + 1
            if level:
                positions.append(produced - 1)
                values.append(level)
        if flags[i]:
            if produced < count:
                raise ValueError(f"word {i}, pair {per_word - 1}: too few values, the last flag "
                                 f"ends the stream after {produced} of {count} values")
            if i != nwords - 1:
                raise ValueError(f"word {i + 1}: word follows the last flag set on word {i}")
            break
        if i == nwords - 1:
            raise ValueError(f"word {i}, pair {per_word - 1}: missing last flag, the words run "
                             f"out after {produced} of {count} values")
    out = np.zeros(count, dtype=np.int64)
    if positions:
        out[np.array(positions, dtype=np.int64)] = np.array(values, dtype=np.int64)
    return out


def entropy_bits(values):
    """Order-0 Shannon entropy of the value distribution, times the number of values.

    Parameters
    ----------
    values : array_like of int
        Values (flattened).

    Returns
    -------
    float
        ``-n * sum_v p(v) * log2 p(v)`` with ``p(v)`` the frequency of ``v``; 0.0 when empty or
        when all values are equal. A lower bound on any order-0 code of the values.
    """
    raw = _int_values("values", values)
    vals = np.asarray(raw, dtype=np.int64) if isinstance(raw, list) else raw
    n = vals.size
    if n == 0:
        return 0.0
    _, counts = np.unique(vals, return_counts=True)
    p = counts / n
    bits = float(-(p * np.log2(p)).sum() * n)
    return bits if bits > 0 else 0.0


def compressed_bits(words, word_width=64):
    """Size of an encoded stream in bits, ``len(words) * word_width``.

    Parameters
    ----------
    words : array_like
        Stream words (1-D).
    word_width : int, optional
        Word width in bits, ``1 <= word_width <= 64``.

    Returns
    -------
    int
    """
    word_width = _check_int("word_width", word_width, 1, 64)
    arr = np.asarray(words)
    if arr.ndim != 1:
        raise ValueError(f"words must be a 1-D array, not an array of shape {arr.shape}")
    return int(arr.size) * word_width

