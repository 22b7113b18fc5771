"""The PE array (networks + PEs) under Amaranth's simulator: whole convolutions in one pass."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rsaccel import preset
from rsaccel.hw.pe import PEError
from rsaccel.hw.pe_array import PEArray, PsumSource
from rsaccel.sim import array_model
from rsaccel.sim.amaranth_tb import receive_stream, send_stream
from rsaccel.sim.pe_model import unpack_psum_group
from rsaccel.sim.array_model import (ARRAY_TEST_CASES, array_case_program, encode_program,
                                     random_layer, single_pass_program)

TINY = preset("tiny")


def run_array(config, prog, *, stall=0.25, seed=0, max_cycles=60000):
    dut = PEArray(config)
    rng = random.Random(seed)
    streams = encode_program(config, prog)
    received = []
    state = {}

    async def configure_then_command(ctx):
        await send_stream(ctx, dut.cfg, streams["cfg"], rng, stall)
        await send_stream(ctx, dut.cmd, streams["cmd"], rng, stall)

    def sender(name):
        async def bench(ctx):
            # data networks start once configuration is written (the top level orders this)
            while not state.get("configured"):
                await ctx.tick()
            await send_stream(ctx, getattr(dut, name), streams[name], rng, stall)
        return bench

    async def collect(ctx):
        await receive_stream(ctx, dut.out, prog.output_count, rng, stall, out=received,
                             max_cycles=max_cycles)
        for _ in range(200):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        state["error"] = ctx.get(dut.error)
        state["dropped"] = ctx.get(dut.dropped)

    async def watch_config(ctx):
        n = len(streams["cfg"])
        seen = 0
        while seen < n:
            _, _, valid, ready = await ctx.tick().sample(dut.cfg.valid, dut.cfg.ready)
            seen += bool(valid and ready)
        state["configured"] = True

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(configure_then_command, background=True)
    sim.add_testbench(watch_config, background=True)
    for name in ("filt", "ifmap", "psum"):
        sim.add_testbench(sender(name), background=True)
    sim.add_testbench(collect)
    sim.run()
    by_source = {}
    for item in received:
        by_source.setdefault((int(item.row), int(item.col)), []).append(
            unpack_psum_group(item.data.as_bits(), config.psum_group, config.acc_width))
    return by_source, state


def check(config, prog, **kwargs):
    got, state = run_array(config, prog, **kwargs)
    assert sum(map(len, got.values())) == prog.output_count, (
        f"array hung: {sum(map(len, got.values()))} of {prog.output_count} outputs")
    assert set(got) == set(prog.expected), (sorted(got), sorted(prog.expected))
    for src, values in prog.expected.items():
        bad = [k for k, (a, b) in enumerate(zip(got[src], values)) if a != b]
        assert not bad, (f"PE {src} output {bad[0]}: got {got[src][bad[0]]}, "
                         f"expected {values[bad[0]]}")
    assert state["error"] == PEError.NONE
    assert not state["dropped"]


def test_enum_values_match_model():
    assert (PsumSource.GIN.value, PsumSource.BELOW.value, PsumSource.ZERO.value) == (
        array_model.PSUM_GIN, array_model.PSUM_BELOW, array_model.PSUM_ZERO)


@pytest.mark.parametrize("index", range(len(ARRAY_TEST_CASES)))
def test_single_pass_conv(index):
    check(TINY, array_case_program(TINY, index), seed=index)


def test_all_zero_input():
    rng = np.random.default_rng(9)
    ifmap, weights = random_layer(rng, TINY, zeros=1.0)
    check(TINY, single_pass_program(TINY, ifmap, weights), seed=9)


def test_corrupted_program_fails():
    # a wrong column ID sends an ifmap row to the wrong PE: the check must notice
    rng = np.random.default_rng(5)
    ifmap, weights = random_layer(rng, TINY)
    prog = single_pass_program(TINY, ifmap, weights)
    for w in prog.cfg:
        if w["target"] == "IFMAP_COL_ID" and (w["row"], w["col"]) == (1, 1):
            w["value"] = 3   # PE (1, 1) should see row 2; give it row 3
    with pytest.raises(AssertionError):
        check(TINY, prog, seed=5, max_cycles=5000)
