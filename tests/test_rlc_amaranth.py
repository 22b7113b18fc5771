"""The RLC codec blocks and the core's WRITE_RLC / READ_RLC commands under Amaranth's simulator.

Every expectation comes from the golden codec (rsaccel.sim.rlc) or from the values themselves.
"""

import dataclasses

import numpy as np
import pytest

from rsaccel import preset
from rsaccel.hw.core import CoreError, Opcode
from rsaccel.hw.rlc_decoder import RLCError
from rsaccel.sim import rlc
from rsaccel.sim.amaranth_tb import run_core, run_rlc_decoder, run_rlc_encoder
from rsaccel.sim.rlc_cases import (codec_format, golden_decode_or_none, malformed_cases,
                                   value_cases)

TINY = preset("tiny")
# formats other than Eyeriss's 5/16 in 64 bits: short runs (maxrun 3) with spare bits,
# 8-bit data (8 lanes, five 12-bit pairs a word), a wide level field (levels can be out of
# the data range)
FORMATS = {
    "eyeriss": TINY,
    "run2_spare": dataclasses.replace(TINY, rlc_run_width=2, rlc_level_width=16),
    "data8": dataclasses.replace(TINY, data_width=8, acc_width=24, rlc_run_width=4,
                                 rlc_level_width=8),
    "level20": dataclasses.replace(TINY, rlc_run_width=3, rlc_level_width=20),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decoder_round_trip_with_stalls(name):
    config = FORMATS[name]
    for i, values in enumerate(value_cases(config, seed=len(name), count=6)):
        words = rlc.encode(values, **codec_format(config))
        got, lasts, error, cycles = run_rlc_decoder(config, words, len(values), stall=0.3,
                                                    seed=i)
        assert error == RLCError.NONE, (i, error)
        assert cycles is not None, f"case {i}: the decoder never finished"
        assert got == [int(v) for v in values], f"case {i}"
        assert lasts == [0] * (len(values) - 1) + [1] * bool(len(values)), f"case {i}: last bits"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_encoder_matches_golden_with_stalls(name):
    config = FORMATS[name]
    for i, values in enumerate(value_cases(config, seed=len(name) + 1, count=6)):
        expected = [int(w) for w in rlc.encode(values, **codec_format(config))]
        words, cycles, busy = run_rlc_encoder(config, values, stall=0.3, seed=i)
        assert words == expected, f"case {i}"
        assert not busy, f"case {i}: still busy after its last word"


@pytest.mark.parametrize("zero_fraction", [0.0, 0.5, 0.9, 1.0])
def test_codec_one_value_per_cycle(zero_fraction):
    # without stalls the decoder sends and the encoder takes one value every cycle, whatever
    # the sparsity: n values take n cycles plus a fixed start/end of 3 (decoder) / 1 (encoder)
    rng = np.random.default_rng(7)
    values = rng.integers(-300, 300, 500)
    values[rng.random(500) < zero_fraction] = 0
    words = rlc.encode(values, **codec_format(TINY))
    got, _, error, cycles = run_rlc_decoder(TINY, words, len(values))
    assert got == list(values) and error == RLCError.NONE
    assert cycles == len(values) + 3
    coded, enc_cycles, _ = run_rlc_encoder(TINY, values)
    assert coded == [int(w) for w in words]
    assert enc_cycles == len(values) + 1


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decoder_rejects_what_golden_rejects(name):
    config = FORMATS[name]
    cases = malformed_cases(config, seed=3, count=8)
    names = {case[0] for case in cases}
    assert {"overshoot", "early_last", "missing_last", "word_after_last", "no_words",
            "count_without_flag"} <= names
    for i, (case, words, count) in enumerate(cases):
        got, _, error, cycles = run_rlc_decoder(config, words, count, stall=0.2, seed=i)
        assert error != RLCError.NONE, f"{case}: accepted"
        assert cycles is not None, f"{case}: the decoder hung instead of stopping"
        assert len(got) <= count, f"{case}: values beyond the count"


def test_decoder_error_codes():
    expected = {"overshoot": RLCError.OVERSHOOT, "padding": RLCError.PADDING,
                "early_last": RLCError.EARLY_LAST, "missing_last": RLCError.MISSING_LAST,
                "count_without_flag": RLCError.MISSING_LAST,
                "word_after_last": RLCError.WORDS_AFTER_LAST, "no_words": RLCError.MISSING_LAST,
                "spare_bits": RLCError.SPARE_BITS}
    config = FORMATS["run2_spare"]
    seen = set()
    for case, words, count in malformed_cases(config, seed=0, count=0):
        _, _, error, _ = run_rlc_decoder(config, words, count)
        assert error == expected[case], case
        seen.add(case)
    assert seen == set(expected)


def test_decoder_level_out_of_data_range():
    # a 20-bit level field holds values that a 16-bit buffer element cannot: rejected
    config = FORMATS["level20"]
    flag = 1 << 63
    words = [flag | (70000 << config.rlc_run_width)]
    assert golden_decode_or_none(config, words, 1) is not None   # the format allows it
    got, _, error, _ = run_rlc_decoder(config, words, 1)
    assert error == RLCError.LEVEL_RANGE and got == []


def test_decoder_waits_for_declared_words():
    # a stream that stops early without its flag: the decoder waits for the declared words
    # (the core's watchdog turns this into TIMEOUT, see below) and sends only what it decoded
    values = np.arange(1, 10)
    words = rlc.encode(values, **codec_format(TINY))
    got, _, error, cycles = run_rlc_decoder(TINY, words[:1], len(values), declared_words=3,
                                            max_cycles=200)
    assert cycles is None and error == RLCError.NONE and got == [1, 2, 3]


def _values_of(words, config):
    dw = config.data_width
    out = []
    for w in words:
        for k in range(config.lanes):
            v = (w >> (k * dw)) & ((1 << dw) - 1)
            out.append(v - (1 << dw) if v >> (dw - 1) else v)
    return out


def _header(op, low):
    return (op.value << 56) | low


@pytest.mark.parametrize("base,count,zeros", [(0, 0, 0.0), (5, 1, 0.0), (10, 37, 0.6),
                                              (3, 130, 0.9), (16, 64, 1.0)])
def test_core_write_rlc_then_read_back(base, count, zeros):
    # WRITE_RLC at any element address; a plain READ shows exactly the range changed (the
    # neighbours keep the pattern written before); READ_RLC gives the golden encoding back
    c = TINY
    rng = np.random.default_rng(base + count)
    values = rng.integers(-2000, 2000, count)
    values[rng.random(count) < zeros] = 0
    coded = [int(w) for w in rlc.encode(values, **codec_format(c))]
    first, last_word = base // c.lanes, (base + count + c.lanes - 1) // c.lanes + 1
    span = last_word - first
    fill = [int(x) for x in rng.integers(0, 1 << 62, span)]
    stream = [_header(Opcode.WRITE, first | (span << 24))] + fill
    stream += [_header(Opcode.WRITE_RLC, base | (count << 24)), len(coded)] + coded
    stream += [_header(Opcode.READ, first | (span << 24)),
               _header(Opcode.READ_RLC, base | (count << 24)), _header(Opcode.SYNC, 0)]
    out, state = run_core(c, stream, span + len(coded) + 1, stall=0.3, seed=count)
    assert state["error"] == CoreError.NONE
    before, after = _values_of(fill, c), _values_of(out[:span], c)
    lo = base - first * c.lanes
    expected = before[:lo] + [int(v) for v in values] + before[lo + count:]
    assert after == expected
    assert out[span:span + len(coded)] == coded
    counters = state["counters"]
    touched = (count and ((base + count - 1) // c.lanes - base // c.lanes + 1))
    assert counters["glb_host_writes"] == span + touched
    assert counters["glb_host_reads"] == span + touched


@pytest.mark.parametrize("case", ["overshoot", "early_last", "word_after_last", "flip"])
def test_core_rejects_malformed_rlc_without_writing_outside(case):
    c = TINY
    cases = [x for x in malformed_cases(c, seed=5, count=4) if x[0].startswith(case)]
    name, words, count = cases[0]
    base = 8
    span = (count + c.lanes - 1) // c.lanes + 4
    fill = [0x1111_2222_3333_4444] * span
    stream = [_header(Opcode.WRITE, 1 | (span << 24))] + fill
    stream += [_header(Opcode.WRITE_RLC, base | (count << 24)), len(words)] + words
    out, state = run_core(c, stream, 1, max_cycles=5000)
    assert state["error"] == CoreError.BAD_RLC, name
    # after the fill, at most the words of [base, base + count) were written (the element
    # writer masks lanes outside the range; the decoder tests check no value past the count)
    assert state["counters"]["glb_host_writes"] <= span + (count + c.lanes - 1) // c.lanes + 1


def test_core_rlc_out_of_range_and_early_end():
    c = TINY
    big = c.glb_elements
    coded = [int(w) for w in rlc.encode(np.zeros(8, np.int64), **codec_format(c))]
    out, state = run_core(c, [_header(Opcode.WRITE_RLC, (big - 4) | (8 << 24)), len(coded)]
                          + coded, 1, max_cycles=2000)
    assert state["error"] == CoreError.BAD_ADDRESS
    out, state = run_core(c, [_header(Opcode.READ_RLC, (big - 4) | (8 << 24))], 1,
                          max_cycles=2000)
    assert state["error"] == CoreError.BAD_ADDRESS
    # three words declared, one sent: the watchdog ends the command instead of a hang
    coded = [int(w) for w in rlc.encode(np.arange(1, 10), **codec_format(c))]
    assert len(coded) == 3
    out, state = run_core(c, [_header(Opcode.WRITE_RLC, 0 | (9 << 24)), 3, coded[0]], 1,
                          max_cycles=3000, timeout=200)
    assert state["error"] == CoreError.TIMEOUT
