"""Tests of the run-length codec :mod:`rsaccel.sim.rlc`.

Expected words are built bit by bit here (by hand, or by a deliberately simple Python-int reference
encoder written from the format rules); they are never taken from the codec under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsaccel.sim import rlc

LAST = 1 << 63          # last-word flag with the default 64-bit words
RW, LW = 5, 16          # default run and level widths; a pair is 21 bits, 3 pairs per word


def pair(run, level, run_width=RW, level_width=LW):
    """Bits of one (run, level) pair, level in two's complement."""
    return run | ((level % (1 << level_width)) << run_width)


def words_list(arr):
    assert arr.dtype == np.uint64
    return [int(w) for w in arr]


# Independent reference (Python ints, follows the rules in the task text literally) ----------------


def ref_pairs(values, run_width):
    maxrun = (1 << run_width) - 1
    out, pending = [], 0
    for v in values:
        if v == 0:
            pending += 1
            continue
        while pending > maxrun:
            out.append((maxrun, 0))
            pending -= maxrun + 1
        out.append((pending, v))
        pending = 0
    while pending > maxrun + 1:
        out.append((maxrun, 0))
        pending -= maxrun + 1
    if pending:
        out.append((pending - 1, 0))
    return out


def ref_encode(values, run_width, level_width, word_width):
    pw = run_width + level_width
    per_word = (word_width - 1) // pw
    pairs = ref_pairs(values, run_width)
    nwords = max(1, math.ceil(len(pairs) / per_word))
    pairs += [(0, 0)] * (nwords * per_word - len(pairs))
    words = []
    for i in range(nwords):
        w = 0
        for k in range(per_word):
            run, level = pairs[i * per_word + k]
            w |= pair(run, level, run_width, level_width) << (k * pw)
        words.append(w)
    words[-1] |= 1 << (word_width - 1)
    return words


# Hand-built examples (default format) --------------------------------------------------------------


def test_empty_input_is_one_flag_word():
    assert words_list(rlc.encode([])) == [LAST]
    assert rlc.decode(np.array([LAST], dtype=np.uint64), 0).tolist() == []


def test_two_zeros_then_five():
    assert words_list(rlc.encode([0, 0, 5])) == [(2 | (5 << 5)) | LAST]


def test_forty_zeros_then_seven():
    # pending 40 > 31: (31, 0) covers 32 values, 8 zeros remain -> (8, 7).
    expected = [pair(31, 0) | (pair(8, 7) << 21) | LAST]
    assert words_list(rlc.encode([0] * 40 + [7])) == expected
    assert rlc.decode(np.array(expected, dtype=np.uint64), 41).tolist() == [0] * 40 + [7]


def test_thirty_three_trailing_zeros():
    # 33 > 32: (31, 0) takes 32, one pending -> (0, 0).
    assert ref_pairs([0] * 33, RW) == [(31, 0), (0, 0)]
    assert words_list(rlc.encode([0] * 33)) == [31 | (pair(0, 0) << 21) | LAST]
    assert rlc.decode(np.array([31 | LAST], dtype=np.uint64), 33).tolist() == [0] * 33


def test_thirty_two_trailing_zeros_is_one_pair():
    # 32 is not more than maxrun + 1 = 32: a single (31, 0).
    assert words_list(rlc.encode([0] * 32)) == [31 | LAST]
    assert rlc.decode(np.array([31 | LAST], dtype=np.uint64), 32).tolist() == [0] * 32


def test_exactly_thirty_one_zeros_before_value_needs_no_filler():
    assert words_list(rlc.encode([0] * 31 + [1])) == [pair(31, 1) | LAST]
    # 32 zeros need a filler and then (0, 1).
    assert words_list(rlc.encode([0] * 32 + [1])) == [pair(31, 0) | (pair(0, 1) << 21) | LAST]


def test_sixty_four_zeros_then_value_spans_words():
    # (31,0), (31,0), (0,3) fill one word exactly; 2 trailing zeros -> (1, 0) in a second word.
    values = [0] * 64 + [3, 0, 0]
    expected = [pair(31, 0) | (pair(31, 0) << 21) | (pair(0, 3) << 42),
                pair(1, 0) | LAST]
    assert words_list(rlc.encode(values)) == expected
    assert rlc.decode(np.array(expected, dtype=np.uint64), len(values)).tolist() == values


def test_negative_levels():
    assert words_list(rlc.encode([-1])) == [(0xFFFF << 5) | LAST]
    assert words_list(rlc.encode([0, -32768])) == [(1 | (0x8000 << 5)) | LAST]
    assert words_list(rlc.encode([32767])) == [(0x7FFF << 5) | LAST]
    got = rlc.decode(np.array([(1 | (0x8000 << 5)) | LAST], dtype=np.uint64), 2)
    assert got.tolist() == [0, -32768]


def test_dense_values_fill_words_in_order():
    expected = [(1 << 5) | ((2 << 5) << 21) | ((3 << 5) << 42),
                (4 << 5) | LAST]
    assert words_list(rlc.encode([1, 2, 3, 4])) == expected
    assert rlc.decode(np.array(expected, dtype=np.uint64), 4).tolist() == [1, 2, 3, 4]


def test_trailing_single_zero_after_value():
    # (0, 5) then (0, 0) for the final zero, which packs to nothing.
    assert words_list(rlc.encode([5, 0])) == [(5 << 5) | LAST]


def test_small_format_hand_example():
    # run 2 bits (maxrun 3), level 3 bits, 16-bit words: 5-bit pairs, 3 per word, flag bit 15.
    values = [0, 0, 0, 0, 0, -4, 3, 0, 0, 0, 0, 0, 0]
    # 5 zeros before -4: (3, 0) + (1, -4); then (0, 3); 6 trailing zeros: (3, 0) + (1, 0).
    w0 = 3 | ((1 | (0b100 << 2)) << 5) | ((0 | (0b011 << 2)) << 10)
    w1 = 3 | (1 << 5) | (1 << 15)
    fmt = dict(run_width=2, level_width=3, word_width=16)
    assert words_list(rlc.encode(values, **fmt)) == [w0, w1]
    assert rlc.decode(np.array([w0, w1], dtype=np.uint64), len(values), **fmt).tolist() == values


def test_encode_accepts_nd_arrays_in_c_order():
    x = np.array([[0, 0], [5, 0]])
    assert words_list(rlc.encode(x)) == words_list(rlc.encode([0, 0, 5, 0]))


# Round trips ------------------------------------------------------------------------------------


@st.composite
def streams(draw):
    run_width = draw(st.integers(1, 6))
    level_width = draw(st.integers(2, 16))
    word_width = draw(st.integers(run_width + level_width + 1, 64))
    lo, hi = -(1 << (level_width - 1)), (1 << (level_width - 1)) - 1
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]))
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    vals = rng.integers(lo, hi + 1, n)
    vals[rng.random(n) >= density] = 0
    if draw(st.booleans()):
        # Hand hypothesis a few chosen positions too (extremes, explicit runs).
        extra = draw(st.lists(st.sampled_from([lo, hi, 0, 0, 0, -1, 1]), max_size=40))
        vals = np.concatenate((vals, np.array(extra, dtype=np.int64)))
    return vals.astype(np.int64), dict(run_width=run_width, level_width=level_width,
                                       word_width=word_width)


@settings(max_examples=150, deadline=None, database=None)
@given(streams())
def test_round_trip_and_matches_reference(stream):
    vals, fmt = stream
    words = rlc.encode(vals, **fmt)
    assert words.dtype == np.uint64
    assert words_list(words) == ref_encode(vals.tolist(), fmt["run_width"], fmt["level_width"],
                                           fmt["word_width"])
    back = rlc.decode(words, vals.size, **fmt)
    assert back.dtype == np.int64
    assert back.tolist() == vals.tolist()
    # The flag is on the last word only.
    flags = [(w >> (fmt["word_width"] - 1)) & 1 for w in words_list(words)]
    assert flags == [0] * (len(flags) - 1) + [1]
    assert rlc.compressed_bits(words, fmt["word_width"]) == len(flags) * fmt["word_width"]


@settings(max_examples=40, deadline=None, database=None)
@given(st.integers(0, 200), st.integers(1, 5))
def test_all_zero_round_trip(n, run_width):
    fmt = dict(run_width=run_width, level_width=8, word_width=32)
    words = rlc.encode(np.zeros(n, dtype=np.int64), **fmt)
    assert words_list(words) == ref_encode([0] * n, run_width, 8, 32)
    assert rlc.decode(words, n, **fmt).tolist() == [0] * n


def test_decode_accepts_python_int_words():
    assert rlc.decode([(2 | (5 << 5)) | LAST], 3).tolist() == [0, 0, 5]


# Malformed streams ------------------------------------------------------------------------------


@pytest.mark.parametrize("words, count, fmt, pattern", [
    # Too few values: the flag arrives after 3 of 4 (the two (0, 0) pairs count as zeros).
    ([(1 << 5) | LAST], 4, {}, r"word 0, pair 2: too few values.*3 of 4"),
    # Missing flag: the words run out.
    ([1 << 5], 1, {}, r"word 0, pair 2: missing last flag"),
    ([1 << 5, 2 << 5], 9, {}, r"word 1, pair 2: missing last flag.*6 of 9"),
    ([], 0, {}, r"word 0: missing last flag"),
    # A word after the last flag.
    ([(1 << 5) | LAST, LAST], 1, {}, r"word 1: word follows the last flag set on word 0"),
    # A non-(0, 0) pair after the count is reached.
    ([(1 << 5) | ((2 << 5) << 21) | LAST], 1, {}, r"word 0, pair 1: pair \(run=0, level=2\)"),
    ([(1 << 5) | (3 << 42) | LAST], 1, {}, r"word 0, pair 2: pair \(run=3, level=0\)"),
    # run + 1 overshoots the remaining count.
    ([3 | (1 << 5) | LAST], 2, {}, r"word 0, pair 0: run \+ 1 = 4 values overshoot the 2 remaining"),
    ([(1 << 5) | ((4 | (1 << 5)) << 21) | LAST], 4, {},
     r"word 0, pair 1: run \+ 1 = 5 values overshoot the 3 remaining"),
    # Count reached in a word without the flag, then another word.
    ([1 << 5, LAST], 1, {}, r"word 1: all 1 values were decoded in word 0, which lacks the last"),
    # Unused bits set (2+2-bit pairs in 16-bit words use bits 0..11; bits 12..14 are unused).
    ([(1 << 12) | (1 << 15)], 0, dict(run_width=2, level_width=2, word_width=16),
     r"word 0: unused bits \[12, 15\) are not zero"),
    # Word values that do not fit the word width.
    ([1 << 16], 0, dict(run_width=2, level_width=2, word_width=16),
     r"word 0: value 65536 is outside the unsigned 16-bit range"),
    ([LAST, -1], 0, {}, r"word 1: value -1 is outside the unsigned 64-bit range"),
])
def test_decode_malformed(words, count, fmt, pattern):
    arr = np.array(words, dtype=object if any(w < 0 for w in words) else np.uint64)
    with pytest.raises(ValueError, match=pattern):
        rlc.decode(arr, count, **fmt)


def test_encode_level_out_of_range():
    with pytest.raises(ValueError, match=r"values\[2\] = 40000 does not fit the signed 16-bit "
                                         r"level range \[-32768, 32767\]"):
        rlc.encode([0, 1, 40000])
    with pytest.raises(ValueError, match=r"values\[0\] = -5 does not fit the signed 3-bit"):
        rlc.encode([-5], run_width=2, level_width=3, word_width=16)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(run_width=0), ValueError, r"run_width must be in \[1, 62\], not 0"),
    (dict(level_width=0), ValueError, r"level_width must be in \[1, 62\], not 0"),
    (dict(word_width=65), ValueError, r"word_width must be in \[3, 64\], not 65"),
    (dict(run_width=8, level_width=8, word_width=16), ValueError,
     r"run_width \+ level_width = 16 must be at most word_width - 1 = 15"),
    (dict(run_width=5.0), TypeError, r"run_width must be an integer"),
])
def test_format_validation(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        rlc.encode([1], **kwargs)
    with pytest.raises(exc, match=pattern):
        rlc.decode(np.array([LAST], dtype=np.uint64), 0, **kwargs)


def test_other_argument_validation():
    with pytest.raises(TypeError, match=r"values must be an array of integers"):
        rlc.encode(np.array([1.5]))
    with pytest.raises(ValueError, match=r"count must be at least 0, not -1"):
        rlc.decode(np.array([LAST], dtype=np.uint64), -1)
    with pytest.raises(TypeError, match=r"count must be an integer"):
        rlc.decode(np.array([LAST], dtype=np.uint64), 1.0)
    with pytest.raises(ValueError, match=r"words must be a 1-D array"):
        rlc.decode(np.array([[LAST]], dtype=np.uint64), 0)


# Entropy and sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize("values, expected", [
    ([], 0.0),
    ([7, 7, 7], 0.0),
    ([1, 2], 2.0),
    ([1, 1, 2, 2], 4.0),
    ([0, 1, 2, 3], 8.0),
    # p = 3/4, 1/4: H = 0.811278... bits per value.
    ([0, 0, 0, 5], 4 * (-(0.75 * math.log2(0.75)) - 0.25 * math.log2(0.25))),
])
def test_entropy_bits(values, expected):
    assert rlc.entropy_bits(values) == pytest.approx(expected, abs=1e-12)
    assert isinstance(rlc.entropy_bits(values), float)


def test_compressed_bits():
    assert rlc.compressed_bits(np.zeros(3, dtype=np.uint64)) == 192
    assert rlc.compressed_bits(np.zeros(2, dtype=np.uint64), word_width=16) == 32
    assert rlc.compressed_bits(np.zeros(2, dtype=np.uint64), 16) == 32
