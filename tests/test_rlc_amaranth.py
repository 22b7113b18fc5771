"""The RLC codec blocks and the core's WRITE_RLC / READ_RLC commands under Amaranth's simulator.

Every expectation comes from the golden codec (rsaccel.sim.rlc) or from the values themselves.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
        lane = (i * 3 + 1) % config.lanes          # fragments from every first lane
        got, lasts, error, cycles = run_rlc_decoder(config, words, len(values), stall=0.3,
                                                    seed=i, first_lane=lane)
        assert error == RLCError.NONE, (i, error)
        assert cycles is not None, f"case {i}: the decoder never finished"
        assert got == [int(v) for v in values], f"case {i}"
        assert lasts == [0] * (len(values) - 1) + [1] * bool(len(values)), f"case {i}: last bits"


@st.composite
def _sparse_values(draw):
    """Values of the tiny preset's 16-bit range, from all-zero to dense, with runs."""
    n = draw(st.integers(0, 160))
    zero_fraction = draw(st.sampled_from([0.0, 0.3, 0.7, 0.95, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.integers(-(1 << 15), 1 << 15, n)
    values[rng.random(n) < zero_fraction] = 0
    return values


@settings(max_examples=40, deadline=None)
@given(_sparse_values(), st.integers(0, 3), st.integers(0, 1000))
def test_codec_round_trips_hypothesis(values, first_lane, seed):
    # both blocks against the golden codec, on drawn arrays, lanes and stalls
    words = rlc.encode(values, **codec_format(TINY))
    got, _, error, cycles = run_rlc_decoder(TINY, words, len(values), first_lane=first_lane,
                                            stall=0.3, seed=seed)
    assert error == RLCError.NONE and cycles is not None
    assert got == [int(v) for v in values]
    coded, _, busy = run_rlc_encoder(TINY, values, first_lane=first_lane,
                                     random_cuts=bool(seed % 2), stall=0.3, seed=seed)
    assert coded == [int(w) for w in words] and not busy


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_encoder_matches_golden_with_stalls(name):
    # every case twice: whole-word fragments from a random first lane (as the element reader
    # sends them), and random contiguous fragments of 1..lanes values
    config = FORMATS[name]
    first_lanes = np.random.default_rng(len(name)).integers(config.lanes, size=100)
    for i, values in enumerate(value_cases(config, seed=len(name) + 1, count=6)):
        expected = [int(w) for w in rlc.encode(values, **codec_format(config))]
        for random_cuts in (False, True):
            lane = int(first_lanes[i])
            words, cycles, busy = run_rlc_encoder(config, values, first_lane=lane,
                                                  random_cuts=random_cuts, stall=0.3, seed=i)
            assert words == expected, f"case {i}, lane {lane}, random cuts {random_cuts}"
            assert not busy, f"case {i}: still busy after its last word"


@pytest.mark.parametrize("name", ["eyeriss", "data8"])
@pytest.mark.parametrize("zero_fraction", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_decoder_keeps_pace_with_a_plain_write(name, zero_fraction):
    # without stalls the decoder fills one buffer word a cycle (as a plain WRITE stores one)
    # unless the stream words run out first: n values from lane b take at most
    # max(words, ceil((b + n) / lanes)) cycles, plus a start/end of 4 and 12 % for fragments
    # cut short where a pair crosses a word; sparse data (90 %) meets the plain WRITE's pace
    config = FORMATS[name]
    n, lanes = 500, config.lanes
    for lane in (0, 1, lanes - 1):
        rng = np.random.default_rng(7)
        values = rng.integers(-100, 100, n)
        values[rng.random(n) < zero_fraction] = 0
        words = rlc.encode(values, **codec_format(config))
        got, _, error, cycles = run_rlc_decoder(config, words, n, first_lane=lane)
        assert got == list(values) and error == RLCError.NONE
        plain = -(-(lane + n) // lanes)                  # buffer words a plain WRITE stores
        bound = max(len(words), plain)
        assert cycles <= 1.12 * bound + 4, (lane, cycles, bound)
        if zero_fraction >= 0.9:
            assert cycles <= plain + 5, (lane, cycles, plain)
        if zero_fraction == 0.0:
            assert cycles <= len(words) + 6, (lane, cycles, len(words))


@pytest.mark.parametrize("name", ["eyeriss", "data8"])
@pytest.mark.parametrize("zero_fraction", [0.0, 0.5, 0.9, 1.0])
def test_encoder_keeps_pace_with_a_plain_read(name, zero_fraction):
    # without stalls the encoder takes one fragment (a whole buffer word, as a plain READ sends
    # one) a cycle and sends one word a cycle: in every cycle it does at least one of the two,
    # and n values from lane 0 take max(ceil(n / lanes), words) cycles plus 2 (the last word
    # leaves two cycles after the last fragment) when the data is sparse (input-bound) or
    # dense (output-bound); mixed data loses a few cycles to bursts the pair buffer cannot hold
    config = FORMATS[name]
    n, lanes = 500, config.lanes
    rng = np.random.default_rng(7)
    values = rng.integers(-100, 100, n)
    values[rng.random(n) < zero_fraction] = 0
    words = [int(w) for w in rlc.encode(values, **codec_format(config))]
    coded, cycles, _ = run_rlc_encoder(config, values)
    assert coded == words
    fragments = -(-n // lanes)
    bound = max(fragments, len(words)) + 2
    assert bound <= cycles <= fragments + len(words) + 2, (cycles, fragments, len(words))
    if zero_fraction != 0.5:
        assert cycles == bound, (cycles, fragments, len(words))
    if zero_fraction >= 0.9:
        assert cycles == fragments + 2         # the plain READ's pace


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
                "early_last": RLCError.EARLY_LAST, "early_last_mid": RLCError.EARLY_LAST,
                "missing_last": RLCError.MISSING_LAST,
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


def _run_element_reader(config, memory, jobs, *, stall=0.0, seed=0, max_cycles=5000):
    """Run ElementReader jobs ``(base, count)`` one after the other against a model buffer
    (``memory``, a list of words; a grant is refused with probability ``stall``, as when
    another client wins the bank). Returns, per job, its cycle and its fragments as ``(cycle,
    data, mask, last)``."""
    import random
    from amaranth.sim import Simulator
    from rsaccel.hw.element_reader import ElementReader

    dut = ElementReader(config)
    rng = random.Random(seed)
    out = []

    async def bench(ctx):
        pending = None              # word address granted last cycle
        for cycle in range(max_cycles):
            if len(out) < len(jobs):
                ctx.set(dut.job.valid, 1)
                ctx.set(dut.job.payload.base, jobs[len(out)][0])
                ctx.set(dut.job.payload.count, jobs[len(out)][1])
            else:
                ctx.set(dut.job.valid, 0)
                if not ctx.get(dut.busy):
                    return
            ctx.set(dut.glb.data_valid, pending is not None)
            # the bus holds garbage between reads
            ctx.set(dut.glb.data, memory[pending] if pending is not None
                    else rng.getrandbits(config.stream_width))
            req, addr = ctx.get(dut.glb.req), ctx.get(dut.glb.addr)
            grant = bool(req) and not (stall and rng.random() < stall)
            ctx.set(dut.glb.grant, grant)
            ready = not (stall and rng.random() < stall)
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                frag = ctx.get(dut.o.payload)
                out[-1][1].append((cycle, int(frag.data), int(frag.mask), int(frag.last)))
            if len(out) < len(jobs) and ctx.get(dut.job.ready):
                out.append((cycle, []))
            pending = addr if grant else None
            await ctx.tick()
        raise AssertionError("the element reader hung")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_element_reader_sends_one_fragment_per_word(stall):
    # each buffer word the range touches leaves once: the range's lanes (contiguous), the
    # others zero, last on the final fragment; without stalls one a cycle from cycle 3 of the job
    c = TINY
    lanes, dw = c.lanes, c.data_width
    rng = np.random.default_rng(11)
    memory = [int(x) for x in rng.integers(0, 1 << 63, c.glb_words)]
    memory = [w | (int(rng.integers(2)) << 63) for w in memory]
    size = c.glb_words * lanes
    jobs = [(0, 0), (5, 1), (lanes - 1, 1), (1, 2), (0, lanes), (1, lanes), (2, 3 * lanes),
            (size - 7, 7), (size - 1, 1)]
    jobs += [(int(b), int(n)) for b, n in zip(rng.integers(0, size - 200, 8),
                                              rng.integers(1, 200, 8))]
    results = _run_element_reader(c, memory, jobs, stall=stall, seed=3)
    assert len(results) == len(jobs)
    for (base, count), (start, frags) in zip(jobs, results):
        expected = []
        if count:
            first, end = base // lanes, (base + count - 1) // lanes
            for w in range(first, end + 1):
                lo = max(base, w * lanes) - w * lanes
                hi = min(base + count, (w + 1) * lanes) - w * lanes
                mask = ((1 << hi) - 1) ^ ((1 << lo) - 1)
                bits = sum(((1 << dw) - 1) << (k * dw) for k in range(lo, hi))
                expected.append((memory[w] & bits, mask, int(w == end)))
        assert [f[1:] for f in frags] == expected, (base, count)
        if stall == 0.0 and frags:
            assert [f[0] - start for f in frags] == list(range(3, 3 + len(frags))), (base, count)


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
