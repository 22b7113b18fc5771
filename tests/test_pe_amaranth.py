"""The processing element under Amaranth's simulator, against the golden PE model."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rsaccel import preset
from rsaccel.hw.pe import PECommand, PEError, PEOp, ProcessingElement
from rsaccel.sim.amaranth_tb import receive_stream, send_stream
from rsaccel.sim.pe_model import (PE_TEST_SEEDS, expected_counters, expected_psum_out, filter_stream,
                                  ifmap_stream, make_pe_case, pack_command, pe_commands,
                                  psum_stream)

TINY = preset("tiny")


def run_pe(config, case, *, stall=0.3, seed=0, max_cycles=20000):
    """Simulate ``case`` on a PE of ``config``; return (psum_out array, counters dict, cycles)."""
    dut = ProcessingElement(config)
    rng = random.Random(seed)
    layout = PECommand(config)
    expected_count = case.rows * case.width * case.p
    received = []
    state = {}

    async def commands(ctx):
        await send_stream(ctx, dut.cmd, [pack_command(layout, c) for c in pe_commands(config, case)],
                          rng, stall)

    async def filters(ctx):
        await send_stream(ctx, dut.filt, filter_stream(case.filters), rng, stall)

    async def ifmaps(ctx):
        await send_stream(ctx, dut.ifmap, ifmap_stream(case.ifmap), rng, stall)

    async def psums(ctx):
        if case.psum_in is not None:
            await send_stream(ctx, dut.psum_in, psum_stream(case.psum_in), rng, stall)

    async def outputs(ctx):
        await receive_stream(ctx, dut.psum_out, expected_count, rng, stall, out=received,
                             max_cycles=max_cycles)
        # let the counters settle: wait until the PE is idle
        for _ in range(100):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        await ctx.tick()
        state["counters"] = {name: ctx.get(dut.counters[name])
                             for name in dut.counters.shape().members}
        state["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (commands, filters, ifmaps, psums):
        sim.add_testbench(bench, background=True)
    sim.add_testbench(outputs)
    sim.run()
    assert len(received) == expected_count, (
        f"PE hung: {len(received)} of {expected_count} psums after {max_cycles} cycles "
        f"({case.describe()})")
    out = np.array(received, dtype=np.int64).reshape(case.rows, case.width, case.p)
    return out, state["counters"], state["error"]


def check_case(config, case, *, stall, seed):
    out, counters, error = run_pe(config, case, stall=stall, seed=seed)
    expected = expected_psum_out(case, config.acc_width)
    mismatch = np.argwhere(out != expected)
    assert mismatch.size == 0, (
        f"psum mismatch at (row, f, k)={tuple(mismatch[0])}: got {out[tuple(mismatch[0])]}, "
        f"expected {expected[tuple(mismatch[0])]} ({case.describe()})")
    assert counters == expected_counters(case, zero_gating=config.zero_gating), case.describe()
    assert error == PEError.NONE


@pytest.mark.parametrize("seed", PE_TEST_SEEDS)
def test_random_cases(seed):
    case = make_pe_case(TINY, seed)
    check_case(TINY, case, stall=0.3, seed=seed)


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_no_stalls(seed):
    case = make_pe_case(TINY, seed)
    check_case(TINY, case, stall=0.0, seed=seed)


@pytest.mark.parametrize("seed", [200, 201])
def test_gating_disabled(seed):
    config = TINY.replace(zero_gating=False)
    case = make_pe_case(config, seed, sparsity=0.6)
    check_case(config, case, stall=0.2, seed=seed)


def test_stride_larger_than_filter():
    # 1x1 filter at stride 3: two of every three positions are dropped
    config = TINY
    rng = np.random.default_rng(7)
    from rsaccel.sim.pe_model import PECase
    case = PECase(filters=rng.integers(-100, 100, size=(2, 3, 1)),
                  ifmap=rng.integers(-100, 100, size=(2, 3, 3 * 4 + 1)),
                  psum_in=None, stride=3, seed=7)
    check_case(config, case, stall=0.3, seed=7)


def test_full_window_eyeriss_spads():
    # p*q*S at the eyeriss filter-spad limit region: q*S = 12 ifmap entries, p = 4
    config = preset("eyeriss").replace(rows=1, cols=1)
    rng = np.random.default_rng(11)
    from rsaccel.sim.pe_model import PECase
    case = PECase(filters=rng.integers(-2**15, 2**15, size=(4, 4, 3)),
                  ifmap=rng.integers(-2**15, 2**15, size=(1, 4, 7)),
                  psum_in=rng.integers(-2**31, 2**31, size=(1, 5, 4)), stride=1, seed=11)
    check_case(config, case, stall=0.2, seed=11)


def test_invalid_command_sets_error():
    dut = ProcessingElement(TINY)
    layout = PECommand(TINY)
    result = {}

    async def bench(ctx):
        bad = dict(op="LOAD_FILTERS", s=TINY.ifmap_spad_depth, p=1, q=2, stride=1, width=1,
                   rows=0, psum_in_en=0)  # q*S exceeds the ifmap spad
        await send_stream(ctx, dut.cmd, [pack_command(layout, bad)], random.Random(0))
        await ctx.tick()
        result["error"] = ctx.get(dut.error)
        result["busy"] = ctx.get(dut.busy)
        await send_stream(ctx, dut.cmd, [pack_command(layout, dict(bad, op="CLEAR"))],
                          random.Random(0))
        await ctx.tick()
        result["cleared"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert result == {"error": PEError.SPAD_OVERFLOW, "busy": 0, "cleared": PEError.NONE}


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_init_wrong_config():
    with pytest.raises(TypeError, match="AccelConfig"):
        ProcessingElement({"rows": 3})
