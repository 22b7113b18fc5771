"""cocotb testbench for the generated processing element.

Runs the random PE cases of :mod:`rsaccel.sim.pe_model` (the same generator and golden model the
Amaranth-simulator tests use) with random stalls on every stream, and checks every psum and every
counter. Parameters come from the environment: ``RSACCEL_CONFIG`` (JSON configuration),
``RSACCEL_PE_SEEDS`` (JSON list of case seeds), ``RSACCEL_PE_DIRECTED`` (1: also the directed
corner cases), ``RSACCEL_PE_STALL`` (``profile``: per-stream stall rates drawn from each case's
seed, as in the Amaranth tests; or one probability for every stream).
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from rsaccel.config import AccelConfig
from rsaccel.hw.pe import PE_COUNTER_NAMES, PECommand
from rsaccel.sim.pe_model import (directed_pe_cases, expected_counters, expected_psum_out,
                                  filter_words, ifmap_stream, make_pe_case, pack_command,
                                  pe_commands, psum_in_words, psum_out_from_words,
                                  psum_transfers, stall_profile)
from rsaccel.sim.cocotb_tb.streams import StreamSink, StreamSource


def _settings():
    config = AccelConfig(**json.loads(os.environ["RSACCEL_CONFIG"]))
    seeds = json.loads(os.environ.get("RSACCEL_PE_SEEDS", "[0]"))
    stall = os.environ.get("RSACCEL_PE_STALL", "profile")
    directed = os.environ.get("RSACCEL_PE_DIRECTED", "0") == "1"
    return config, seeds, stall, directed


def _counters(dut, config):
    bits = dut.counters.value.to_unsigned()
    mask = (1 << config.counter_width) - 1
    return {name: (bits >> (i * config.counter_width)) & mask
            for i, name in enumerate(PE_COUNTER_NAMES)}


async def _run_case(dut, config, case, stall, seed):
    rng = random.Random(seed)
    layout = PECommand(config)
    clk = dut.clk
    stalls = (stall_profile(seed) if stall == "profile"
              else dict.fromkeys(("cmd", "filt", "ifmap", "psum_in", "psum_out"), float(stall)))
    cmd = StreamSource(dut, "cmd", clk, rng, stalls["cmd"])
    filt = StreamSource(dut, "filt", clk, rng, stalls["filt"])
    ifmap = StreamSource(dut, "ifmap", clk, rng, stalls["ifmap"])
    psum_in = StreamSource(dut, "psum_in", clk, rng, stalls["psum_in"])
    psum_out = StreamSink(dut, "psum_out", clk, rng, stalls["psum_out"], signed=False)

    clear = dict(pe_commands(config, case)[0], op="CLEAR")
    commands = [pack_command(layout, c) for c in [clear] + pe_commands(config, case)]
    tasks = [cocotb.start_soon(cmd.send(commands)),
             cocotb.start_soon(filt.send(filter_words(config, case.filters, -1))),
             cocotb.start_soon(ifmap.send(ifmap_stream(case.ifmap)))]
    if case.psum_in is not None:
        tasks.append(cocotb.start_soon(psum_in.send(psum_in_words(config, case))))
    count = psum_transfers(config, case)
    received = await psum_out.receive(count, max_cycles=50 * count * case.q * case.s + 4000)
    assert len(received) == count, (
        f"PE hung: {len(received)} of {count} psums arrived ({case.describe()})")
    # nothing more may come out, the PE goes idle, and every input value was consumed
    dut.psum_out__ready.value = 1
    for _ in range(50):
        await ReadOnly()
        assert not dut.psum_out__valid.value, f"extra psum output ({case.describe()})"
        await RisingEdge(clk)
    dut.psum_out__ready.value = 0
    await ReadOnly()
    assert not dut.busy.value, f"PE still busy after its last output ({case.describe()})"
    unfinished = [i for i, task in enumerate(tasks) if not task.done()]
    for task in tasks:
        task.cancel()
    assert not unfinished, f"input streams {unfinished} not fully consumed ({case.describe()})"
    await RisingEdge(clk)
    got = psum_out_from_words(config, case, received)
    expected = expected_psum_out(case, config.acc_width)
    bad = np.argwhere(got != expected)
    assert bad.size == 0, (
        f"psum mismatch at (row, f, k)={tuple(int(i) for i in bad[0])}: got "
        f"{got[tuple(bad[0])]}, expected {expected[tuple(bad[0])]} ({case.describe()})")
    await ReadOnly()
    counters = _counters(dut, config)
    want = expected_counters(case, zero_gating=config.zero_gating,
                             zero_skipping=config.zero_skipping)
    assert counters == want, f"counters {counters} != expected {want} ({case.describe()})"
    assert dut.error.value.to_unsigned() == 0, f"error code set ({case.describe()})"
    await RisingEdge(clk)


@cocotb.test()
async def random_pe_cases(dut):
    """Every seeded PE case, bit-exact psums and exact counters, with random stalls."""
    config, seeds, stall, directed = _settings()
    Clock(dut.clk, 10, unit="ns").start()
    for name in ("cmd", "filt", "ifmap", "psum_in"):
        getattr(dut, f"{name}__valid").value = 0
    dut.psum_out__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    cases = [make_pe_case(config, seed) for seed in seeds]
    if directed:
        cases += [directed_pe_cases(config)[name] for name in sorted(directed_pe_cases(config))]
    for case in cases:
        dut._log.info("case %s", case.describe())
        await _run_case(dut, config, case, stall, case.seed)
