"""cocotb testbench for the generated AXI4-Lite register file (:mod:`rsaccel.hw.axil`).

Drives the slave with cocotbext-axi's ``AxiLiteMaster`` with random pauses on all five
channels. The top level must be ``AXILiteRegisters(registers=REGISTERS)`` (``tests/test_axil.py``
generates it); the byte offsets below are written out by hand, not taken from the generator.
"""

import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

#: The register list of the design under test.
REGISTERS = [("control", "rw", 8), ("status", "ro", 4), ("cycles", "ro", 48),
             ("start", "w1p", 1), ("scratch", "rw", 32)]
CONTROL, STATUS, CYCLES_LO, CYCLES_HI, START, SCRATCH = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
UNMAPPED = (0x18, 0x1C, 0x400, 0xFFC)
CYCLES_STEP = 0x1_0000_0003    # the high word changes every cycle, so torn reads show
MASK48 = (1 << 48) - 1


def _pauses(rng, rate):
    while True:
        yield rng.random() < rate


async def _setup(dut, seed, pause=0.4):
    """Start the clock, reset, and return an AXI-Lite master with random pauses everywhere."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.status.value = 0
    dut.cycles.value = 0
    dut.rst.value = 1
    axi = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for log in (axi.write_if.log, axi.read_if.log):
        log.setLevel(logging.WARNING)      # one INFO line per transfer otherwise
    rng = random.Random(seed)
    for channel in (axi.write_if.aw_channel, axi.write_if.w_channel, axi.write_if.b_channel,
                    axi.read_if.ar_channel, axi.read_if.r_channel):
        channel.set_pause_generator(_pauses(random.Random(rng.getrandbits(32)), pause))
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return axi, rng


async def _read(axi, addr):
    resp = await axi.read(addr, 4)
    return int.from_bytes(resp.data, "little"), resp.resp


async def _write(axi, addr, data):
    """Write the bytes ``data`` at byte address ``addr`` (strobes follow); return ``bresp``."""
    return (await axi.write(addr, bytes(data))).resp


def _port(dut, name):
    return getattr(dut, name).value.to_unsigned()


@cocotb.test(timeout_time=200, timeout_unit="us")
async def axil_rw_registers_and_strobes(dut):
    """rw registers: full writes, byte-strobed writes, bits beyond the width dropped."""
    axi, _ = await _setup(dut, 1)
    assert await _read(axi, SCRATCH) == (0, AxiResp.OKAY)
    assert await _write(axi, SCRATCH, [0xDD, 0xCC, 0xBB, 0xAA]) == AxiResp.OKAY
    assert await _read(axi, SCRATCH) == (0xAABBCCDD, AxiResp.OKAY)
    assert _port(dut, "scratch") == 0xAABBCCDD
    assert await _write(axi, SCRATCH + 1, [0x33, 0x22]) == AxiResp.OKAY      # wstrb 0b0110
    assert await _read(axi, SCRATCH) == (0xAA2233DD, AxiResp.OKAY)
    assert await _write(axi, SCRATCH + 3, [0x55]) == AxiResp.OKAY            # wstrb 0b1000
    assert await _read(axi, SCRATCH) == (0x552233DD, AxiResp.OKAY)
    assert _port(dut, "scratch") == 0x552233DD
    assert await _write(axi, CONTROL, [0x5A, 0xFF, 0xFF, 0xFF]) == AxiResp.OKAY
    assert await _read(axi, CONTROL) == (0x5A, AxiResp.OKAY)
    assert _port(dut, "control") == 0x5A
    assert await _write(axi, CONTROL + 1, [0xA5]) == AxiResp.OKAY            # beyond width
    assert await _read(axi, CONTROL) == (0x5A, AxiResp.OKAY)
    assert _port(dut, "control") == 0x5A


@cocotb.test(timeout_time=200, timeout_unit="us")
async def axil_ro_and_atomic_counter(dut):
    """ro registers show their input; a 48-bit counter read low then high is never torn."""
    axi, _ = await _setup(dut, 2)
    state = {"cycle": 0, "history": {}}

    async def drive_counter():
        value = 0x0000_FFFF_FFF0
        while True:
            dut.cycles.value = value
            state["history"][state["cycle"]] = value
            await RisingEdge(dut.clk)
            state["cycle"] += 1
            value = (value + CYCLES_STEP) & MASK48

    counter = cocotb.start_soon(drive_counter())
    for status in (0x9, 0x0, 0xF, 0x6):
        dut.status.value = status
        await RisingEdge(dut.clk)
        assert await _read(axi, STATUS) == (status, AxiResp.OKAY)
    reads = []
    for _ in range(40):
        begin = state["cycle"]
        lo, rlo = await _read(axi, CYCLES_LO)
        hi, rhi = await _read(axi, CYCLES_HI)
        assert (rlo, rhi) == (AxiResp.OKAY, AxiResp.OKAY)
        reads.append((hi << 32 | lo, begin, state["cycle"]))
    counter.cancel()
    for value, begin, end in reads:
        window = [state["history"][c] for c in range(begin, end + 1) if c in state["history"]]
        assert value in window, (f"torn 48-bit read {value:#014x}: not a value the counter held "
                                 f"in cycles {begin}..{end}")
    assert len({v >> 32 for v, _, _ in reads}) > 10


@cocotb.test(timeout_time=200, timeout_unit="us")
async def axil_w1p_pulse(dut):
    """A write of 1 to a w1p register pulses its port for exactly one cycle; reads return 0."""
    axi, _ = await _setup(dut, 3)
    samples = []

    async def monitor():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            samples.append(int(dut.start.value))

    task = cocotb.start_soon(monitor())
    # (bytes written at START + offset, pulse expected)
    for offset, data, pulse in [(0, [1, 0, 0, 0], True), (0, [0, 0, 0, 0], False),
                                (0, [0xFF, 0xFF, 0xFF, 0xFF], True), (1, [0xFF], False),
                                (0, [0xFE, 0xFF, 0xFF, 0xFF], False), (0, [0x01], True)]:
        before = len(samples)
        assert await _write(axi, START + offset, data) == AxiResp.OKAY
        await ClockCycles(dut.clk, 3)
        got = samples[before:]
        assert sum(got) == (1 if pulse else 0), (offset, data, got)
        assert all(v in (0, 1) for v in got)
    assert await _read(axi, START) == (0, AxiResp.OKAY)
    task.cancel()


@cocotb.test(timeout_time=200, timeout_unit="us")
async def axil_unmapped_and_ro_writes(dut):
    """Unmapped reads return 0 with SLVERR, unmapped writes change nothing and answer SLVERR;
    writes to ro registers are ignored with OKAY."""
    axi, _ = await _setup(dut, 4)
    dut.status.value = 0x3
    assert await _write(axi, SCRATCH, [0x78, 0x56, 0x34, 0x12]) == AxiResp.OKAY
    assert await _write(axi, CONTROL, [0x81]) == AxiResp.OKAY
    for addr in UNMAPPED:
        assert await _read(axi, addr) == (0, AxiResp.SLVERR), hex(addr)
        assert await _write(axi, addr, [0xFF] * 4) == AxiResp.SLVERR, hex(addr)
    for addr in (STATUS, CYCLES_LO, CYCLES_HI):
        assert await _write(axi, addr, [0xFF] * 4) == AxiResp.OKAY, hex(addr)
    assert await _read(axi, STATUS) == (0x3, AxiResp.OKAY)
    assert await _read(axi, SCRATCH) == (0x12345678, AxiResp.OKAY)
    assert await _read(axi, CONTROL) == (0x81, AxiResp.OKAY)
    assert _port(dut, "scratch") == 0x12345678
    assert _port(dut, "control") == 0x81


@cocotb.test(timeout_time=200, timeout_unit="us")
async def axil_random_traffic(dut):
    """Pipelined random byte writes to the rw registers with concurrent reads of ro registers;
    AW and W reach the slave in every order under the random pauses."""
    axi, rng = await _setup(dut, 5, pause=0.5)
    model = {CONTROL: 0, SCRATCH: 0}
    widths = {CONTROL: 8, SCRATCH: 32}
    names = {CONTROL: "control", SCRATCH: "scratch"}

    async def reader():
        for i in range(40):
            dut.status.value = i & 0xF
            await RisingEdge(dut.clk)
            assert await _read(axi, STATUS) == (i & 0xF, AxiResp.OKAY)
            assert await _read(axi, START) == (0, AxiResp.OKAY)

    reads = cocotb.start_soon(reader())
    for batch in range(12):
        events = []
        for _ in range(rng.randint(1, 4)):     # several writes in flight at once
            addr = rng.choice([CONTROL, SCRATCH])
            offset = rng.randrange(4)
            data = [rng.getrandbits(8) for _ in range(rng.randint(1, 4 - offset))]
            for i, byte in enumerate(data):
                shift = 8 * (offset + i)
                model[addr] = (model[addr] & ~(0xFF << shift)) | (byte << shift)
            events.append(axi.init_write(addr + offset, bytes(data)))
        for event in events:
            await event.wait()
            assert event.data.resp == AxiResp.OKAY
        for addr in (CONTROL, SCRATCH):
            expected = model[addr] & ((1 << widths[addr]) - 1)
            assert _port(dut, names[addr]) == expected, (batch, hex(addr))
            assert await _read(axi, addr) == (expected, AxiResp.OKAY), (batch, hex(addr))
    await reads
