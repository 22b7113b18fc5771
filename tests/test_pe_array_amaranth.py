"""The PE array (networks + PEs) under Amaranth's simulator: whole convolutions in one pass."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rsaccel import preset
from rsaccel.hw.multicast import TaggedLayout
from rsaccel.hw.pe import PECommand, PEError, PEOp
from rsaccel.hw.pe_array import ArrayConfigWrite, ArrayTarget, PEArray, PsumSource
from rsaccel.sim import array_model
from rsaccel.sim.amaranth_tb import receive_stream, send_stream
from rsaccel.sim.array_model import single_pass_program

TINY = preset("tiny")


def encode_program(config, prog):
    cfg_layout = ArrayConfigWrite(config)
    cmd_layout = PECommand(config)
    data_layout = TaggedLayout(config.noc_id_width, config.data_width)
    psum_layout = TaggedLayout(config.noc_id_width, config.acc_width)

    def tagged(layout, items):
        mask = (1 << layout["data"].width) - 1
        return [layout.const({"row": r, "col": c, "data": v & mask}).as_bits()
                for r, c, v in items]

    return {
        "cfg": [cfg_layout.const(dict(w, target=ArrayTarget[w["target"]])).as_bits()
                for w in prog.cfg],
        "cmd": [cmd_layout.const(dict(c, op=PEOp[c["op"]])).as_bits() for c in prog.cmds],
        "filt": tagged(data_layout, prog.filt),
        "ifmap": tagged(data_layout, prog.ifmap),
        "psum": tagged(psum_layout, prog.psum),
    }


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
        by_source.setdefault((int(item.row), int(item.col)), []).append(int(item.data))
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


def random_layer(rng, config, *, N=1, C=2, M=2, R=3, S=3, E=4, F=3, stride=1, zeros=0.3):
    H = (E - 1) * stride + R
    W = (F - 1) * stride + S
    lo, hi = -(1 << (config.data_width - 1)), 1 << (config.data_width - 1)
    ifmap = rng.integers(lo, hi, size=(N, C, H, W))
    ifmap[rng.random(ifmap.shape) < zeros] = 0
    weights = rng.integers(lo, hi, size=(M, C, R, S))
    return ifmap, weights


def test_enum_values_match_model():
    assert (PsumSource.GIN.value, PsumSource.BELOW.value, PsumSource.ZERO.value) == (
        array_model.PSUM_GIN, array_model.PSUM_BELOW, array_model.PSUM_ZERO)


@pytest.mark.parametrize("seed, shape", [
    (0, dict(C=2, M=2, R=3, S=3, E=4, F=3)),
    (1, dict(C=1, M=3, R=2, S=2, E=3, F=4, stride=2)),
    (2, dict(C=3, M=1, R=1, S=1, E=4, F=5)),               # 1x1 conv, R = 1
    (3, dict(C=1, M=2, R=3, S=4, E=2, F=2, N=2)),          # batch of 2, R = rows
    (4, dict(C=2, M=2, R=3, S=3, E=4, F=2, zeros=0.0)),    # dense
])
def test_single_pass_conv(seed, shape):
    rng = np.random.default_rng(seed)
    ifmap, weights = random_layer(rng, TINY, **shape)
    bias = rng.integers(-2**20, 2**20, size=weights.shape[0]) if seed % 2 else None
    prog = single_pass_program(TINY, ifmap, weights, bias,
                               stride=shape.get("stride", 1))
    check(TINY, prog, seed=seed)


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
