"""cocotb testbench for the generated RLC decoder and encoder blocks.

Runs the cases of :mod:`rsaccel.sim.rlc_cases` (the stimulus of the Amaranth-simulator tests)
with random stalls on every stream and checks them against the golden codec. The top level
(``rsaccel_rlc_decoder`` or ``rsaccel_rlc_encoder``) picks the test. Environment:
``RSACCEL_CONFIG`` (JSON configuration), ``RSACCEL_RLC_SEED``, ``RSACCEL_RLC_STALL``.
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from rsaccel.config import AccelConfig
from rsaccel.sim import rlc
from rsaccel.sim.amaranth_tb import rlc_fragments
from rsaccel.sim.rlc_cases import (codec_format, fragment_values, malformed_cases,
                                   split_fragment, value_cases)
from rsaccel.sim.cocotb_tb.streams import StreamSink, StreamSource


def _settings():
    config = AccelConfig(**json.loads(os.environ["RSACCEL_CONFIG"]))
    return (config, int(os.environ.get("RSACCEL_RLC_SEED", "0")),
            float(os.environ.get("RSACCEL_RLC_STALL", "0.3")))


async def _reset(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def _wait_idle(dut, limit):
    for _ in range(limit):
        await ReadOnly()
        if not int(dut.busy.value):
            await RisingEdge(dut.clk)
            return True
        await RisingEdge(dut.clk)
    return False


async def _decode(dut, config, words, count, rng, stall, first_lane=0):
    job = StreamSource(dut, "job", dut.clk, rng)
    await job.send([count | (len(words) << 24) | (first_lane << 48)])
    source = StreamSource(dut, "i", dut.clk, rng, stall)
    feeder = cocotb.start_soon(source.send(words))
    sink = StreamSink(dut, "o", dut.clk, rng, stall, signed=False)
    # one fragment per buffer word the values touch (more when the stream stalls)
    raw = await sink.receive_until(lambda v: split_fragment(config, v)[2],
                                   max_cycles=20 * (count + len(words)) + 200,
                                   stop=lambda: not int(dut.busy.value))
    finished = await _wait_idle(dut, 200)
    feeder.cancel()          # a rejected stream leaves words untaken
    dut.i__valid.value = 0
    fragments = [split_fragment(config, v) for v in raw]
    values, lasts = fragment_values(config, fragments, first_lane)
    return values, lasts, int(dut.error.value), finished


@cocotb.test()
async def rlc_block(dut):
    config, seed, stall = _settings()
    await _reset(dut)
    rng = random.Random(seed)
    fmt = codec_format(config)
    is_decoder = hasattr(dut, "error")
    for i, values in enumerate(value_cases(config, seed)):
        words = [int(w) for w in rlc.encode(values, **fmt)]
        if is_decoder:
            got, lasts, error, finished = await _decode(dut, config, words, len(values), rng,
                                                        stall, first_lane=i % config.lanes)
            assert finished and error == 0, f"case {i}: error {error}, finished {finished}"
            assert got == [int(v) for v in values], f"case {i}: values differ"
            assert lasts == [0] * (len(values) - 1) + [1] * bool(len(values)), f"case {i}"
        else:
            # word fragments from a varying first lane; every other case cut at random
            cuts = random.Random(seed + i) if i % 2 else None
            fragments = rlc_fragments(config, values, first_lane=(3 * i) % config.lanes,
                                      rng=cuts)
            job = StreamSource(dut, "job", dut.clk, rng)
            await job.send([len(values)])
            cocotb.start_soon(StreamSource(dut, "i", dut.clk, rng, stall).send(fragments))
            sink = StreamSink(dut, "o", dut.clk, rng, stall, signed=False)
            got = await sink.receive(len(words), max_cycles=20 * len(values) + 200)
            assert got == words, f"case {i}: words differ from the golden encoding"
            assert await _wait_idle(dut, 50), f"case {i}: still busy"
    if is_decoder:
        for name, words, count in malformed_cases(config, seed):
            got, _, error, finished = await _decode(dut, config, words, count, rng, stall)
            assert error != 0, f"{name}: accepted"
            assert finished, f"{name}: the decoder hung"
            assert len(got) <= count, f"{name}: values past the count"
    np.random.seed(0)   # nothing random left unseeded
