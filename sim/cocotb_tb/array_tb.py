"""cocotb testbench for the generated PE array: the one-pass layers of ``ARRAY_TEST_CASES``.

Environment: ``RSACCEL_CONFIG`` (JSON configuration), ``RSACCEL_ARRAY_CASES`` (JSON list of case
indices), ``RSACCEL_STALL`` (stall probability on every stream).
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from rsaccel.config import AccelConfig
from rsaccel.hw.gather import SourcedLayout
from rsaccel.hw.pe import PsumGroup
from rsaccel.sim.pe_model import unpack_psum_group
from rsaccel.sim.array_model import array_case_program, encode_program
from rsaccel.sim.cocotb_tb.streams import StreamSink, StreamSource


def _unpack_sourced(config, bits):
    layout = SourcedLayout(config.rows, config.cols, PsumGroup(config))
    fields = {}
    for name, fld in layout:
        value = (bits >> fld.offset) & ((1 << fld.width) - 1)
        if name == "data":
            value = unpack_psum_group(value, config.psum_group, config.acc_width)
        fields[name] = value
    return fields


async def _run_program(dut, config, prog, stall, seed):
    rng = random.Random(seed)
    clk = dut.clk
    streams = encode_program(config, prog)
    sources = {name: StreamSource(dut, name, clk, rng, stall)
               for name in ("cfg", "cmd", "filt", "ifmap", "psum")}
    sink = StreamSink(dut, "out", clk, rng, stall, signed=False)
    # configuration first (the top level orders this), then everything at once
    await sources["cfg"].send(streams["cfg"])
    tasks = [cocotb.start_soon(sources[name].send(streams[name]))
             for name in ("cmd", "filt", "ifmap", "psum")]
    words = await sink.receive(prog.output_count, max_cycles=200000)
    for task in tasks:
        task.cancel()
    assert len(words) == prog.output_count, (
        f"array hung: {len(words)} of {prog.output_count} outputs")
    got = {}
    for word in words:
        f = _unpack_sourced(config, word)
        got.setdefault((f["row"], f["col"]), []).append(f["data"])
    assert set(got) == set(prog.expected), (sorted(got), sorted(prog.expected))
    for src, values in prog.expected.items():
        bad = [k for k, (a, b) in enumerate(zip(got[src], values)) if a != b]
        assert not bad, (f"PE {src} output {bad[0]}: got {got[src][bad[0]]}, "
                         f"expected {values[bad[0]]}")
    for _ in range(200):
        await ReadOnly()
        if not dut.busy.value:
            break
        await RisingEdge(clk)
    await RisingEdge(clk)
    await ReadOnly()
    assert dut.error.value.to_unsigned() == 0
    assert int(dut.dropped.value) == 0
    await RisingEdge(clk)


@cocotb.test()
async def array_cases(dut):
    """Every listed one-pass layer, bit-exact, with random stalls on every stream."""
    config = AccelConfig(**json.loads(os.environ["RSACCEL_CONFIG"]))
    cases = json.loads(os.environ.get("RSACCEL_ARRAY_CASES", "[0]"))
    stall = float(os.environ.get("RSACCEL_STALL", "0.25"))
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for name in ("cfg", "cmd", "filt", "ifmap", "psum"):
        getattr(dut, f"{name}__valid").value = 0
    dut.out__ready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    for index in cases:
        dut._log.info("array case %d", index)
        await _run_program(dut, config, array_case_program(config, index), stall, index)
