"""cocotb testbench for the whole accelerator: streams a job in, collects what comes out.

Environment: ``RSACCEL_JOB`` (path of a JSON file with ``words``: the input stream words,
``expect_frames``: output frames to wait for, ``stall``: probability of idle/back-pressure
cycles on both AXI4-Streams, ``seed``, ``timeout``: watchdog cycles, ``max_cycles``) and
``RSACCEL_RESULT`` (path where a JSON file with the output words, the registers and the cycle
count is written). AXI4-Stream and AXI4-Lite are driven with cocotbext-axi.
"""

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)


def _pauses(rng, probability):
    while True:
        yield rng.random() < probability


async def read_registers(axil, register_map):
    values = {}
    for reg in register_map:
        if reg["access"] != "ro":
            continue
        low = await axil.read_dword(reg["offset"])
        value = low
        if reg["width"] > 32:
            value |= (await axil.read_dword(reg["offset"] + 4)) << 32
        values[reg["name"]] = value
    return values


@cocotb.test()
async def run_job(dut):
    """Send the job's words, wait for its output frames, read every register."""
    with open(os.environ["RSACCEL_JOB"]) as f:
        job = json.load(f)
    rng = random.Random(job.get("seed", 0))
    Clock(dut.clk, 10, unit="ns").start()
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for bfm in (source, sink, axil.write_if, axil.read_if):
        bfm.log.setLevel(logging.WARNING)
    stall = float(job.get("stall", 0.0))
    if stall:
        source.set_pause_generator(_pauses(rng, stall))
        sink.set_pause_generator(_pauses(rng, stall))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    register_map = job["registers"]
    offsets = {r["name"]: r["offset"] for r in register_map}
    await axil.write_dword(offsets["timeout"], int(job.get("timeout", 1 << 20)))
    await axil.write_dword(offsets["control"], 1)
    await axil.write_dword(offsets["clear_counters"], 1)

    data = b"".join(int(w).to_bytes(8, "little") for w in job["words"])
    await source.send(AxiStreamFrame(data))
    words = []
    frames = 0
    max_cycles = int(job.get("max_cycles", 10_000_000))
    poll = 256
    status = {"stopped": None}
    cycles = 0
    while True:
        while not sink.empty():
            frame = sink.recv_nowait()
            frames += 1
            tdata = bytes(frame.tdata)
            words += [int.from_bytes(tdata[k:k + 8], "little") for k in range(0, len(tdata), 8)]
        if frames >= job["expect_frames"]:
            break
        if cycles >= max_cycles:
            status["stopped"] = f"no result after {cycles} cycles"
            break
        await ClockCycles(dut.clk, poll)
        cycles += poll
        # an error stops the accelerator (it then discards input): stop waiting
        if (await axil.read_dword(offsets["status"]) >> 4) & 0xF:
            status["stopped"] = "error"
            break
    await ClockCycles(dut.clk, 4)
    status["irq"] = int(dut.irq.value)
    regs = await read_registers(axil, register_map)
    with open(os.environ["RSACCEL_RESULT"], "w") as f:
        json.dump({"words": words, "registers": regs, "frames": frames, **status}, f)

