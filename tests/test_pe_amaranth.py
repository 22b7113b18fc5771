"""The processing element under Amaranth's simulator, against the golden PE model."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rsaccel import preset
from rsaccel.hw.pe import PECommand, PEError, ProcessingElement
from rsaccel.sim.amaranth_tb import receive_stream, send_stream
from rsaccel.sim.pe_model import (PE_TEST_SEEDS, PECase, directed_pe_cases, expected_counters,
                                  expected_psum_out, filter_words, issued_slots, ifmap_stream, make_pe_case,
                                  pack_command, pe_commands, psum_in_words, psum_out_from_words,
                                  psum_transfers, stall_profile)

TINY = preset("tiny")
SKIPPING = TINY.replace(zero_skipping=True)
STREAMS = ("cmd", "filt", "ifmap", "psum_in", "psum_out")


def run_pe(config, cases, *, stalls, seed=0, max_cycles=40000, trailing=None, window=None):
    """Run ``cases`` back to back on one PE (LOAD, RUN, LOAD, RUN, ... without draining).

    ``stalls`` maps each stream name to its stall probability. ``trailing`` is a list of extra
    commands sent after the cases. Returns the received psums per case, the counters, the error
    code and end-of-run observations.
    """
    dut = ProcessingElement(config)
    rng = random.Random(seed)
    layout = PECommand(config)
    counts = [psum_transfers(config, case) for case in cases]
    received = []
    done = set()
    state = {}

    def source(name, values):
        async def bench(ctx):
            await send_stream(ctx, getattr(dut, name), values, rng, stalls[name])
            done.add(name)
        return bench

    commands = [pack_command(layout, c) for case in cases
                for c in pe_commands(config, case, window)]
    commands += [pack_command(layout, c) for c in (trailing or [])]
    benches = [
        source("cmd", commands),
        # pad values of a filter group must be dropped: send them as -1, not zero
        source("filt", [v for case in cases for v in filter_words(config, case.filters, -1)]),
        source("ifmap", [v for case in cases for v in ifmap_stream(case.ifmap)]),
        source("psum_in", [w for case in cases for w in psum_in_words(config, case)]),
    ]

    async def outputs(ctx):
        await receive_stream(ctx, dut.psum_out, sum(counts), rng, stalls["psum_out"],
                             out=received, max_cycles=max_cycles)
        # the PE must go idle and send nothing more, even with ready held high
        ctx.set(dut.psum_out.ready, 1)
        extra = 0
        for _ in range(50):
            _, _, valid, busy = await ctx.tick().sample(dut.psum_out.valid, dut.busy)
            extra += valid
        state["extra_outputs"] = extra
        state["busy"] = ctx.get(dut.busy)
        state["counters"] = {name: ctx.get(dut.counters[name])
                             for name in dut.counters.shape().members}
        state["error"] = ctx.get(dut.error)
        state["sources_done"] = set(done)

    async def cycle_counter(ctx):
        # cycles from reset until the last psum has been taken
        state["cycles"] = 0
        while len(received) < sum(counts):
            await ctx.tick()
            state["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(cycle_counter, background=True)
    for bench in benches:
        sim.add_testbench(bench, background=True)
    sim.add_testbench(outputs)
    sim.run()
    described = "; ".join(case.describe() for case in cases)
    assert len(received) == sum(counts), (
        f"PE hung: {len(received)} of {sum(counts)} psums after {max_cycles} cycles "
        f"({described})")
    outs, start = [], 0
    for case, count in zip(cases, counts):
        outs.append(psum_out_from_words(config, case, [item.as_bits() for item in
                                                        received[start:start + count]]))
        start += count
    return outs, state


def check_cases(config, cases, *, stalls, seed, counters=True, window=None):
    outs, state = run_pe(config, cases, stalls=stalls, seed=seed, window=window)
    for case, out in zip(cases, outs):
        expected = expected_psum_out(case, config.acc_width)
        bad = np.argwhere(out != expected)
        assert bad.size == 0, (
            f"psum mismatch at (row, f, k)={tuple(bad[0])}: got {out[tuple(bad[0])]}, "
            f"expected {expected[tuple(bad[0])]} ({case.describe()})")
    if counters:
        want = {}
        for case in cases:
            for name, value in expected_counters(case, zero_gating=config.zero_gating,
                                                 zero_skipping=config.zero_skipping).items():
                want[name] = want.get(name, 0) + value
        mask = (1 << config.counter_width) - 1
        assert state["counters"] == {k: v & mask for k, v in want.items()}
    assert state["error"] == PEError.NONE
    assert state["extra_outputs"] == 0 and state["busy"] == 0
    assert state["sources_done"] == {"cmd", "filt", "ifmap", "psum_in"}, \
        "the PE did not consume every value it was sent"
    return outs, state


MODES = {"gating": TINY, "skipping": SKIPPING}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("seed", PE_TEST_SEEDS)
def test_random_cases(seed, mode):
    config = MODES[mode]
    case = make_pe_case(config, seed)
    check_cases(config, [case], stalls=stall_profile(seed), seed=seed)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(directed_pe_cases(TINY)))
def test_directed_cases(name, mode):
    config = MODES[mode]
    case = directed_pe_cases(config)[name]
    check_cases(config, [case], stalls=stall_profile(1000 + case.seed), seed=case.seed)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("seed", [300, 301, 302])
def test_back_to_back_commands(seed, mode):
    # LOAD/RUN pairs with different shapes, without waiting for the pipeline in between,
    # under heavy psum_out back-pressure
    config = MODES[mode]
    cases = [make_pe_case(config, seed * 10 + i) for i in range(3)]
    stalls = dict(stall_profile(seed), psum_out=0.8)
    check_cases(config, cases, stalls=stalls, seed=seed)


def test_clear_after_run_waits_for_the_pipeline():
    case = make_pe_case(TINY, 7)
    clear = dict(pe_commands(TINY, case)[0], op="CLEAR")
    outs, state = run_pe(TINY, [case], stalls=dict.fromkeys(STREAMS, 0.0), seed=7,
                         trailing=[clear])
    assert np.array_equal(outs[0], expected_psum_out(case, TINY.acc_width))
    assert set(state["counters"].values()) == {0}


@pytest.mark.parametrize("seed", [200, 201])
def test_gating_off_gives_the_same_psums(seed):
    case = make_pe_case(TINY, seed, sparsity=0.6)
    off = TINY.replace(zero_gating=False)
    out_on, state_on = check_cases(TINY, [case], stalls=stall_profile(seed), seed=seed)
    out_off, state_off = check_cases(off, [case], stalls=stall_profile(seed), seed=seed)
    assert np.array_equal(out_on[0], out_off[0])
    assert state_off["counters"]["gated_macs"] == 0
    assert state_on["counters"]["gated_macs"] > 0
    assert (state_off["counters"]["macs"]
            == state_on["counters"]["macs"] + state_on["counters"]["gated_macs"])


def test_gated_count_is_the_number_of_zero_operands():
    # brute force, independent of expected_counters: one loop over every MAC slot
    case = make_pe_case(TINY, 11, sparsity=0.5)
    zeros = 0
    for r in range(case.rows):
        for f in range(case.width):
            for s in range(case.s):
                for c in range(case.q):
                    zeros += case.p * (case.ifmap[r, c, f * case.stride + s] == 0)
    _, state = check_cases(TINY, [case], stalls=stall_profile(11), seed=11)
    assert state["counters"]["gated_macs"] == zeros > 0


#: Psum transfers of one psum and of four (8-bit data, 16-bit psums); ``tiny`` moves two.
GROUPS = {"group1": TINY.replace(psum_group=1),
          "group4": TINY.replace(data_width=8, acc_width=16, psum_group=4),
          "group4_skipping": TINY.replace(data_width=8, acc_width=16, psum_group=4,
                                          zero_skipping=True)}


@pytest.mark.parametrize("group", sorted(GROUPS))
@pytest.mark.parametrize("seed", [310, 311])
def test_psum_groups_back_to_back(seed, group):
    # back-to-back shapes (p both below and above the group, not multiples of it) under heavy
    # back-pressure: every psum and every pad value checked
    config = GROUPS[group]
    cases = [make_pe_case(config, seed * 10 + i) for i in range(3)]
    assert any(case.p % config.psum_group for case in cases) or config.psum_group == 1
    stalls = dict(stall_profile(seed), psum_out=0.8)
    check_cases(config, cases, stalls=stalls, seed=seed)


FILTER_GROUPS = {"filter2": TINY,
                 "filter4": TINY.replace(filter_group=4),
                 "filter8_skipping": TINY.replace(data_width=8, acc_width=16, filter_group=8,
                                                  zero_skipping=True)}


@pytest.mark.parametrize("group", sorted(FILTER_GROUPS))
@pytest.mark.parametrize("seed, filt_stall", [(320, 0.7), (321, 0.0)])
def test_filter_groups_back_to_back(seed, filt_stall, group):
    # LOAD/RUN pairs back to back with filters in groups: p*q*S both a multiple of the group
    # (the next LOAD's first transfer waits while the last value is written) and not (pad
    # values sent as -1), with the filter stream heavily stalled and never stalled
    config = FILTER_GROUPS[group]
    g = config.filter_group
    cases = [make_pe_case(config, seed * 10 + i) for i in range(3)]
    rng = np.random.default_rng(seed)
    dw, aw = config.data_width, config.acc_width
    cases.insert(1, PECase(filters=rng.integers(-2**(dw - 1), 2**(dw - 1), size=(g, 1, 3)),
                           ifmap=rng.integers(-2**(dw - 1), 2**(dw - 1), size=(2, 1, 6)),
                           psum_in=rng.integers(-2**(aw - 1), 2**(aw - 1), size=(2, 4, g)),
                           stride=1, seed=seed))
    assert any(case.filters.size % g for case in cases)
    stalls = dict(stall_profile(seed), filt=filt_stall)
    check_cases(config, cases, stalls=stalls, seed=seed)


def test_wider_accumulator_and_narrow_data():
    config = TINY.replace(data_width=8, acc_width=24, rlc_level_width=16)
    for seed in (21, 22, 23):
        check_cases(config, [make_pe_case(config, seed)], stalls=stall_profile(seed), seed=seed)


def test_eyeriss_spads_full_filter_spad_and_max_stride():
    config = preset("eyeriss").replace(rows=1, cols=1)
    rng = np.random.default_rng(11)
    # p*q*S = 18*4*3 = 216 of 224 filter entries, q*S = 12 = the whole ifmap spad
    full = PECase(filters=rng.integers(-2**15, 2**15, size=(18, 4, 3)),
                  ifmap=rng.integers(-2**15, 2**15, size=(1, 4, 7)),
                  psum_in=rng.integers(-2**31, 2**31, size=(1, 5, 18)), stride=1, seed=11)
    # stride 12 = max_stride with a 3-wide filter: 9 of every 12 positions dropped
    strided = PECase(filters=rng.integers(-2**15, 2**15, size=(2, 1, 3)),
                     ifmap=rng.integers(-2**15, 2**15, size=(2, 1, 12 * 3 + 3)),
                     psum_in=None, stride=12, seed=12)
    check_cases(config, [full, strided], stalls=stall_profile(11), seed=11)


ERROR_COMMANDS = {
    "BAD_OP": dict(op=3),
    "ZERO_FIELD": dict(op="RUN", rows=0),
    "SPAD_OVERFLOW": dict(op="LOAD_FILTERS", q=2, s=TINY.ifmap_spad_depth),
    "BAD_STRIDE": dict(op="RUN", stride=TINY.max_stride + 1),
    "BAD_WIDTH": dict(op="RUN", width=0),
    "BAD_WINDOW": dict(op="RUN", window=15),  # 15 * q > 12 ifmap spad entries
    "FILTER_MISMATCH": dict(op="RUN", p=2),
}


@pytest.mark.parametrize("code", sorted(ERROR_COMMANDS))
def test_invalid_command_sets_error_and_is_dropped(code):
    # a valid job whose RUN follows an invalid command must still be right, and the error
    # code is the one of the invalid command. Op 3 is LOAD_RUN, a bad op only where zero
    # skipping rules it out
    config = TINY.replace(zero_skipping=True) if code == "BAD_OP" else TINY
    case = make_pe_case(config, 5)
    base = dict(pe_commands(config, case)[1])
    bad = dict(base, **ERROR_COMMANDS[code])
    if code == "BAD_OP":
        bad["op"] = "LOAD_FILTERS"
    layout = PECommand(config)
    load, run = pe_commands(config, case)
    packed_bad = pack_command(layout, bad)
    if code == "BAD_OP":
        packed_bad |= 3 << layout["op"].offset
    dut = ProcessingElement(config)
    rng = random.Random(5)
    result = {}

    async def bench(ctx):
        await send_stream(ctx, dut.cmd, [pack_command(layout, load)], rng)
        await send_stream(ctx, dut.filt, filter_words(config, case.filters), rng)
        await send_stream(ctx, dut.cmd, [packed_bad], rng)
        await ctx.tick()
        result["error"] = ctx.get(dut.error)
        result["busy"] = ctx.get(dut.busy)
        await send_stream(ctx, dut.cmd, [pack_command(layout, run)], rng)

    async def feed(ctx):
        await send_stream(ctx, dut.ifmap, ifmap_stream(case.ifmap), rng)

    async def feed_psum(ctx):
        if case.psum_in is not None:
            await send_stream(ctx, dut.psum_in, psum_in_words(config, case), rng)

    async def collect(ctx):
        out = await receive_stream(ctx, dut.psum_out, psum_transfers(config, case), rng,
                                   max_cycles=20000)
        result["out"] = psum_out_from_words(config, case, [item.as_bits() for item in out])
        result["final_error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench, background=True)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(feed_psum, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert result["error"] == PEError[code]
    assert result["busy"] == 0
    assert np.array_equal(result["out"], expected_psum_out(case, config.acc_width))
    assert result["final_error"] == PEError[code]   # sticky until CLEAR


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_init_wrong_config():
    with pytest.raises(TypeError, match="AccelConfig"):
        ProcessingElement({"rows": 3})


@pytest.mark.parametrize("seed", [500, 501, 502, 503])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_skipping_saves_the_cycles_of_zeros(sparsity, seed):
    # Without stalls a gating PE spends a cycle on every MAC slot. A skipping PE issues only the
    # slots of non-zero operands (issued_slots); with the largest ifmap ring (these cases) it may
    # wait up to a cycle per row on dense data to decide which slot is a window's last; on
    # sparse data it must save at least half of the cycles of the skipped slots (the rest can go
    # to waiting for the ifmap stream).
    case = make_pe_case(TINY, seed, sparsity=sparsity, max_width=12, max_rows=4)
    stalls = dict.fromkeys(STREAMS, 0.0)
    _, gating = check_cases(TINY, [case], stalls=stalls, seed=seed)
    _, skipping = check_cases(SKIPPING, [case], stalls=stalls, seed=seed)
    all_slots = int(issued_slots(case, zero_skipping=False).sum()) * case.p
    issued = int(issued_slots(case, zero_skipping=True).sum()) * case.p
    assert issued <= skipping["cycles"] <= gating["cycles"] + case.rows, case.describe()
    if sparsity >= 0.5:
        assert skipping["cycles"] <= gating["cycles"] - (all_slots - issued) // 2, \
            case.describe()


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("p,q,s,stride", [(1, 1, 2, 2), (1, 1, 2, 3), (2, 2, 3, 1), (1, 3, 1, 4),
                                          (3, 1, 3, 2)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_ring_without_slack(mode, p, q, s, stride, sparsity):
    # window = S: the ring holds only the current window, so the ifmap stream and the issue
    # position are as tightly coupled as they get (U > S drops positions); dense and sparse
    config = MODES[mode]
    rng = np.random.default_rng(p * 1000 + q * 100 + s * 10 + stride)
    width, rows = 5, 2
    ifmap = rng.integers(-(1 << 15), 1 << 15, size=(rows, q, (width - 1) * stride + s))
    ifmap[rng.random(ifmap.shape) < sparsity] = 0
    case = PECase(filters=rng.integers(-(1 << 15), 1 << 15, size=(p, q, s)), ifmap=ifmap,
                  psum_in=rng.integers(-(1 << 31), 1 << 31, size=(rows, width, p)),
                  stride=stride, seed=0)
    check_cases(config, [case], stalls=stall_profile(p + q + s), seed=stride, window=s)


_ROW_CASES = [(1, 1, 3, 1, "tight"), (2, 2, 3, 1, "tight"), (3, 1, 3, 2, "tight"),
              (2, 1, 2, 2, "tight"), (2, 1, 3, 1, "largest"), (2, 2, 2, 2, "largest")]


# (a skipping PE with window = S = U waits in every window to decide its last slot,
# rows = 1 included, so that shape is left to the gating PE)
@pytest.mark.parametrize("mode,p,q,s,stride,ring", [
    (mode, *shape) for mode in sorted(MODES) + ["no_lookahead"] for shape in _ROW_CASES
    if not (mode == "skipping" and shape == (2, 1, 2, 2, "tight"))])
def test_next_row_enters_while_the_last_window_runs(mode, p, q, s, stride, ring):
    # Without stalls a PE issues a MAC slot every cycle across row boundaries (in shapes
    # with U <= S, whose windows follow each other without a gap within a row): the next row's
    # first positions enter the ring while the row's last window runs, so rows after the
    # first cost exactly their slots (a ring that waited for the row's end would cost at
    # least a cycle per row). Both with the tightest ring (window = S) and the largest, gating
    # and skipping (dense data: every slot issues); without ifmap_lookahead the ring does
    # refill after each row.
    rng = np.random.default_rng(p * 1000 + q * 100 + s * 10 + stride)
    width = 4
    window = s if ring == "tight" else None
    cycles = {}
    for rows in (1, 6):
        ifmap = rng.integers(-(1 << 15), 1 << 15, size=(rows, q, (width - 1) * stride + s))
        case = PECase(filters=rng.integers(-(1 << 15), 1 << 15, size=(p, q, s)), ifmap=ifmap,
                      psum_in=rng.integers(-(1 << 31), 1 << 31, size=(rows, width, p)),
                      stride=stride, seed=0)
        config = TINY.replace(ifmap_lookahead=False) if mode == "no_lookahead" else MODES[mode]
        _, state = check_cases(config, [case], stalls=dict.fromkeys(STREAMS, 0.0),
                               seed=0, window=window)
        cycles[rows] = state["cycles"]
    if mode == "no_lookahead":
        assert cycles[6] - cycles[1] >= 5 * (width * p * q * s + 1), cycles
    else:
        assert cycles[6] - cycles[1] == 5 * width * p * q * s, cycles
