"""Test cases for the RLC codec blocks: value arrays from all-zero to dense, and malformed streams.

Shared by the Amaranth-simulator tests and the cocotb testbenches so both run the same stimulus.
Expected results always come from the golden codec :mod:`rsaccel.sim.rlc`, never from the
hardware.
"""

import numpy as np

from . import rlc

__all__ = ["codec_format", "value_cases", "malformed_cases", "golden_decode_or_none",
           "split_fragment", "fragment_values"]


def codec_format(config):
    """Keyword arguments of :mod:`rsaccel.sim.rlc` functions for ``config``'s stream format."""
    return dict(run_width=config.rlc_run_width, level_width=config.rlc_level_width,
                word_width=config.stream_width)


def _random_values(rng, count, zero_fraction, data_width):
    lo, hi = -(1 << (data_width - 1)), 1 << (data_width - 1)
    values = rng.integers(lo, hi, size=count)
    small = rng.random(count) < 0.5          # half of the non-zeros small, like activations
    values[small] = rng.integers(-8, 9, size=int(small.sum()))
    values[rng.random(count) < zero_fraction] = 0
    return values.astype(np.int64)


def value_cases(config, seed, count=12):
    """Value arrays for round trips: directed corners, then random ones from ``seed``.

    The directed cases: no values, one zero, one non-zero, all-zero arrays around multiples of
    the longest run, extreme values, a run of exactly the longest run before a value. Random
    cases draw a length up to ``8 * (maxrun + 1)`` and a zero fraction from 0 to 1.
    """
    dw = config.data_width
    span = 1 << config.rlc_run_width                 # maxrun + 1
    lo, hi = -(1 << (dw - 1)), (1 << (dw - 1)) - 1
    cases = [
        np.zeros(0, np.int64), np.zeros(1, np.int64), np.array([hi]), np.array([lo]),
        np.zeros(span - 1, np.int64), np.zeros(span, np.int64), np.zeros(span + 1, np.int64),
        np.zeros(2 * span + 3, np.int64),
        np.concatenate([np.zeros(span - 1, np.int64), [5], np.zeros(span, np.int64), [-1]]),
        np.concatenate([np.zeros(span, np.int64), [lo, hi], np.zeros(span + 1, np.int64)]),
        np.tile(np.array([lo, hi, 1, -1], np.int64), 5),
    ]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 8 * span + 1))
        cases.append(_random_values(rng, n, float(rng.choice([0.0, 0.3, 0.7, 0.95, 1.0])), dw))
    return cases


def golden_decode_or_none(config, words, count):
    """The golden decoding of ``words``, or ``None`` where the golden decoder rejects them."""
    try:
        return rlc.decode(np.asarray(words, dtype=np.uint64), count, **codec_format(config))
    except ValueError:
        return None


def malformed_cases(config, seed, count=12):
    """Malformed streams ``(name, words, count)``, each one rejected by the golden decoder.

    Directed: a run that overshoots the count, a non-(0, 0) padding pair, the last flag on an
    earlier word (the stream ends early, or more words follow it), a missing last flag, a word
    after the flagged one, spare bits set (where the format has spare bits), no words at all;
    then random single-bit flips of valid streams that the golden decoder rejects.
    """
    fmt = codec_format(config)
    sw, rw, lw = config.stream_width, config.rlc_run_width, config.rlc_level_width
    pw = rw + lw
    npairs = config.rlc_pairs_per_word
    flag = 1 << (sw - 1)
    rng = np.random.default_rng(seed)
    out = []

    def valid(values):
        return [int(w) for w in rlc.encode(np.asarray(values, np.int64), **fmt)]

    dense = list(range(1, 3 * npairs + 2))        # ends in a partly used word
    words = valid(dense)
    # the first pair of the last word: run 1 more than the values left
    bad = list(words)
    bad[-1] |= 1
    out.append(("overshoot", bad, len(dense)))
    if npairs > 1:
        # a padding pair that is not (0, 0): level 1 in the unused last pair
        bad = list(words)
        bad[-1] |= 1 << ((npairs - 1) * pw + rw)
        out.append(("padding", bad, len(dense)))
    # the flag on the first word: the stream ends before all values
    bad = [words[0] | flag]
    out.append(("early_last", bad, len(dense)))
    # the flag on the first word with the others still following (a decoder that looks ahead
    # must not read past the flag)
    bad = [words[0] | flag] + words[1:]
    out.append(("early_last_mid", bad, len(dense)))
    # no flag anywhere
    bad = list(words)
    bad[-1] &= ~flag
    out.append(("missing_last", bad, len(dense)))
    # all values in the first word, which lacks the flag, then a flag-only word
    first = valid(dense[:npairs])
    out.append(("count_without_flag", [first[0] & ~flag, flag], npairs))
    # a word after the flagged one
    out.append(("word_after_last", words + [0], len(dense)))
    out.append(("no_words", [], 3))
    if npairs * pw < sw - 1:
        bad = list(words)
        bad[0] |= 1 << (npairs * pw)
        out.append(("spare_bits", bad, len(dense)))
    # random single-bit flips that the golden decoder rejects
    tries = 0
    while sum(name.startswith("flip") for name, _, _ in out) < count and tries < 50 * count:
        tries += 1
        values = _random_values(rng, int(rng.integers(1, 6 * (1 << rw))), 0.6,
                                config.data_width)
        words = valid(values)
        i = int(rng.integers(len(words)))
        bit = int(rng.integers(sw))
        bad = list(words)
        bad[i] ^= 1 << bit
        if golden_decode_or_none(config, bad, len(values)) is None:
            out.append((f"flip{i}_{bit}", bad, len(values)))
    for name, words, n in out:
        assert golden_decode_or_none(config, words, n) is None, f"case {name} decodes"
    return out


def split_fragment(config, raw):
    """``(data, mask, last)`` of a :func:`~rsaccel.hw.glb.WordFragment` payload read as one
    integer (as a cocotb sink sees it)."""
    from ..hw.glb import WordFragment
    layout = WordFragment(config)
    return tuple((raw >> layout[name].offset) & ((1 << layout[name].width) - 1)
                 for name in ("data", "mask", "last"))


def fragment_values(config, fragments, first_lane=0):
    """Values and ``last`` bits of buffer-word fragments, checking how they are laid out.

    ``fragments`` are ``(data, mask, last)`` integers as a decoder sent them, for a job whose
    first value goes to lane ``first_lane``. Each fragment must hold a contiguous run of lanes
    that starts where the one before it ended (wrapping to lane 0 after a full word); lanes
    outside the mask must be zero; only the final fragment may carry ``last``. Returns ``(values, lasts)``, one ``last`` bit per value
    (set on the final value of a ``last`` fragment).

    Raises
    ------
    AssertionError
        Naming the fragment that breaks a rule.
    """
    dw, lanes = config.data_width, config.lanes
    values, lasts = [], []
    lane = first_lane % lanes
    for i, (word, mask, last) in enumerate(fragments):
        assert mask, f"fragment {i}: empty mask"
        assert not any(f[2] for f in fragments[:i]), f"fragment {i}: follows a last fragment"
        low = (mask & -mask).bit_length() - 1
        high = mask.bit_length()
        assert mask == ((1 << high) - 1) ^ ((1 << low) - 1), f"fragment {i}: mask {mask:b}"
        assert low == lane, f"fragment {i}: starts at lane {low}, expected {lane}"
        for t in range(lanes):
            v = (word >> (t * dw)) & ((1 << dw) - 1)
            if low <= t < high:
                values.append(v - (1 << dw) if v >> (dw - 1) else v)
                lasts.append(0)
            else:
                assert v == 0, f"fragment {i}: lane {t} outside the mask is {v}, not zero"
        if last:
            lasts[-1] = 1
        lane = high % lanes
    return values, lasts
