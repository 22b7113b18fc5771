# amaranth: UnusedElaboratable=no
"""The AXI4-Lite register file: layout and validation, the Amaranth simulator with a random-delay
Python master, and the generated Verilog under cocotb (Icarus and Verilator) with cocotbext-axi."""

import os
import random
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from amaranth import Shape
from amaranth.back import verilog
from amaranth.sim import Simulator

from rsaccel.hw.axil import AXILiteRegisters

REGISTERS = [("control", "rw", 8), ("status", "ro", 4), ("cycles", "ro", 48),
             ("start", "w1p", 1), ("scratch", "rw", 32)]
# byte offsets, written out by hand (not taken from the code under test)
CONTROL, STATUS, CYCLES_LO, CYCLES_HI, START, SCRATCH = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
OKAY, SLVERR = 0, 2
CYCLES_STEP = 0x1_0000_0003    # the high word changes every cycle, so torn reads show
MASK48 = (1 << 48) - 1


# --- layout and validation ------------------------------------------------------------------

def test_register_map():
    dut = AXILiteRegisters(registers=REGISTERS)
    assert dut.register_map == [
        {"name": "control", "offset": 0x00, "access": "rw", "width": 8},
        {"name": "status", "offset": 0x04, "access": "ro", "width": 4},
        {"name": "cycles", "offset": 0x08, "access": "ro", "width": 48},
        {"name": "start", "offset": 0x10, "access": "w1p", "width": 1},
        {"name": "scratch", "offset": 0x14, "access": "rw", "width": 32},
    ]
    dut.register_map[0]["offset"] = 99            # a copy: the component is unaffected
    assert dut.register_map[0]["offset"] == 0


def test_signature():
    dut = AXILiteRegisters(addr_width=10, registers=REGISTERS)
    members = dut.signature.members
    expected = {
        "s_axil_awaddr": ("In", 10), "s_axil_awprot": ("In", 3), "s_axil_awvalid": ("In", 1),
        "s_axil_awready": ("Out", 1), "s_axil_wdata": ("In", 32), "s_axil_wstrb": ("In", 4),
        "s_axil_wvalid": ("In", 1), "s_axil_wready": ("Out", 1), "s_axil_bresp": ("Out", 2),
        "s_axil_bvalid": ("Out", 1), "s_axil_bready": ("In", 1), "s_axil_araddr": ("In", 10),
        "s_axil_arprot": ("In", 3), "s_axil_arvalid": ("In", 1), "s_axil_arready": ("Out", 1),
        "s_axil_rdata": ("Out", 32), "s_axil_rresp": ("Out", 2), "s_axil_rvalid": ("Out", 1),
        "s_axil_rready": ("In", 1),
        "control": ("Out", 8), "status": ("In", 4), "cycles": ("In", 48), "start": ("Out", 1),
        "scratch": ("Out", 32),
    }
    got = {name: (m.flow.value, Shape.cast(m.shape).width) for name, m in members.items()}
    assert got == expected
    text = verilog.convert(dut, name="axil_regs", emit_src=False)
    for name in expected:
        assert f" {name};" in text or f" {name} " in text, name


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(registers=[]), ValueError, "at least one register"),
    (dict(registers=[("a", "rw", 8)], addr_width=1), ValueError,
     "Address width must be between 2 and 32, not 1"),
    (dict(registers=[("a", "rw", 8)], addr_width="12"), TypeError, "Address width must be an"),
    (dict(registers=[("a", "rw", 8), ("a", "ro", 8)]), ValueError, "'a' is used more than once"),
    (dict(registers=[("1a", "rw", 8)]), ValueError, "identifier"),
    (dict(registers=[("class", "rw", 8)]), ValueError, "identifier"),
    (dict(registers=[("_x", "rw", 8)]), ValueError, "identifier"),
    (dict(registers=[("s_axil_foo", "rw", 8)]), ValueError, "reserved"),
    (dict(registers=[("clk", "rw", 8)]), ValueError, "reserved"),
    (dict(registers=[("signature", "rw", 8)]), ValueError, "reserved"),
    (dict(registers=[("register_map", "rw", 8)]), ValueError, "reserved"),
    (dict(registers=[("a", "wo", 8)]), ValueError, "access must be one of ro, rw, w1p, not 'wo'"),
    (dict(registers=[("a", "rw", 0)]), ValueError, "width must be between 1 and 64, not 0"),
    (dict(registers=[("a", "rw", 65)]), ValueError, "width must be between 1 and 64, not 65"),
    (dict(registers=[("a", "rw", 8.0)]), TypeError, "width must be an integer"),
    (dict(registers=[("a", "rw")]), TypeError, "(name, access, width)"),
    (dict(registers=[("a", "rw", 32), ("b", "rw", 33)], addr_width=3), ValueError,
     "needs 12 bytes, more than the 8"),
])
def test_validation(kwargs, error, message):
    with pytest.raises(error) as info:
        AXILiteRegisters(**kwargs)
    assert message in str(info.value)


def test_map_fits_exactly():
    dut = AXILiteRegisters(addr_width=3, registers=[("a", "rw", 32), ("b", "ro", 32)])
    assert [e["offset"] for e in dut.register_map] == [0, 4]
    dut = AXILiteRegisters(addr_width=3, registers=[("a", "rw", 64)])
    assert dut.register_map == [{"name": "a", "offset": 0, "access": "rw", "width": 64}]


# --- Amaranth simulator ---------------------------------------------------------------------

class ChannelLock:
    """Lets several testbenches share one AXI channel: one transaction at a time."""

    def __init__(self):
        self.busy = False

    async def acquire(self, ctx):
        while self.busy:
            await ctx.tick()
        self.busy = True


class AxilMaster:
    """A cycle-level AXI4-Lite master with random delays on every channel.

    ``order`` of a write: ``"aw_first"`` (W is raised only after the AW handshake),
    ``"w_first"`` (the reverse), ``"together"`` (both raised in the same cycle) or ``"random"``
    (independent random delays). Checks the slave's side of the protocol as it goes: responses
    only after their requests, and ``xVALID``/payload held until accepted.
    """

    def __init__(self, dut, rng, *, stall=0.4, max_delay=3, timeout=200, read_lock=None):
        self.dut = dut
        self.read_lock = read_lock if read_lock is not None else ChannelLock()
        self.rng = rng
        self.stall = stall
        self.max_delay = max_delay
        self.timeout = timeout

    def _delay(self):
        return self.rng.randint(0, self.max_delay) if self.rng.random() < 0.7 else 0

    async def write(self, ctx, addr, data, strb=0xF, order="random"):
        """Write ``data`` (with byte strobes ``strb``) to ``addr``; return ``bresp``."""
        d = self.dut
        aw_wait = self._delay()
        w_wait = aw_wait if order == "together" else self._delay()
        aw_done = w_done = False
        aw_valid = w_valid = False
        pending = None          # bresp of a response seen but not accepted yet
        ctx.set(d.s_axil_awaddr, addr)
        ctx.set(d.s_axil_awprot, self.rng.randrange(8))
        ctx.set(d.s_axil_wdata, data)
        ctx.set(d.s_axil_wstrb, strb)
        for _ in range(self.timeout):
            if not aw_done and not aw_valid:
                if aw_wait == 0 and (order != "w_first" or w_done):
                    aw_valid = True
                elif order != "w_first" or w_done:
                    aw_wait -= 1
            if not w_done and not w_valid:
                if w_wait == 0 and (order != "aw_first" or aw_done):
                    w_valid = True
                elif order != "aw_first" or aw_done:
                    w_wait -= 1
            if order == "together":
                assert aw_valid == w_valid
            bready = self.rng.random() >= self.stall
            ctx.set(d.s_axil_awvalid, aw_valid)
            ctx.set(d.s_axil_wvalid, w_valid)
            ctx.set(d.s_axil_bready, bready)
            _, _, awready, wready, bvalid, bresp = await ctx.tick().sample(
                d.s_axil_awready, d.s_axil_wready, d.s_axil_bvalid, d.s_axil_bresp)
            if bvalid:
                assert aw_done and w_done, "bvalid before both AW and W were accepted"
                if pending is not None:
                    assert bresp == pending, "bresp changed while bvalid was held"
                if bready:
                    ctx.set(d.s_axil_bready, 0)
                    return bresp
                pending = bresp
            else:
                assert pending is None, "bvalid dropped before bready"
            if aw_valid and awready:
                aw_done, aw_valid = True, False
                ctx.set(d.s_axil_awvalid, 0)
            if w_valid and wready:
                w_done, w_valid = True, False
                ctx.set(d.s_axil_wvalid, 0)
        raise AssertionError(f"write to {addr:#x} timed out (aw_done={aw_done}, "
                             f"w_done={w_done})")

    async def read(self, ctx, addr):
        """Read ``addr``; return ``(rdata, rresp)``."""
        await self.read_lock.acquire(ctx)
        try:
            return await self._read(ctx, addr)
        finally:
            self.read_lock.busy = False

    async def _read(self, ctx, addr):
        d = self.dut
        ar_wait = self._delay()
        ar_done = ar_valid = False
        pending = None
        ctx.set(d.s_axil_araddr, addr)
        ctx.set(d.s_axil_arprot, self.rng.randrange(8))
        for _ in range(self.timeout):
            if not ar_done and not ar_valid:
                if ar_wait == 0:
                    ar_valid = True
                else:
                    ar_wait -= 1
            rready = self.rng.random() >= self.stall
            ctx.set(d.s_axil_arvalid, ar_valid)
            ctx.set(d.s_axil_rready, rready)
            _, _, arready, rvalid, rdata, rresp = await ctx.tick().sample(
                d.s_axil_arready, d.s_axil_rvalid, d.s_axil_rdata, d.s_axil_rresp)
            if rvalid:
                assert ar_done, "rvalid before the AR handshake"
                if pending is not None:
                    assert (rdata, rresp) == pending, "rdata/rresp changed while rvalid was held"
                if rready:
                    ctx.set(d.s_axil_rready, 0)
                    return rdata, rresp
                pending = (rdata, rresp)
            else:
                assert pending is None, "rvalid dropped before rready"
            if ar_valid and arready:
                ar_done, ar_valid = True, False
                ctx.set(d.s_axil_arvalid, 0)
        raise AssertionError(f"read of {addr:#x} timed out (ar_done={ar_done})")


def merge(old, data, strb, width):
    """Expected register value after writing ``data`` with strobes ``strb`` over ``old``."""
    value = old
    for byte in range(4):
        if strb >> byte & 1:
            value = (value & ~(0xFF << 8 * byte)) | (data & (0xFF << 8 * byte))
    return value & ((1 << width) - 1)


def run_sim(dut, benches, background=(), *, vcd=None):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    for bench in background:
        sim.add_testbench(bench, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def environment(dut, state, status=0x5):
    """Background bench: counts cycles, drives ``status`` and the ``cycles`` counter (recording
    its value per cycle) and records every cycle in which ``start`` is non-zero."""
    state.update(cycle=0, history={}, pulses=[], status=status)

    async def bench(ctx):
        value = 0x0000_FFFF_FFF0
        while True:
            ctx.set(dut.cycles, value)
            ctx.set(dut.status, state["status"])
            state["history"][state["cycle"]] = value
            _, _, start = await ctx.tick().sample(dut.start)
            if start:
                state["pulses"].append((state["cycle"], start))
            state["cycle"] += 1
            value = (value + CYCLES_STEP) & MASK48
    return bench


def test_sim_rw_strobes_ro_and_unmapped():
    dut = AXILiteRegisters(registers=REGISTERS)
    state = {}
    seen = {}

    async def bench(ctx):
        m = AxilMaster(dut, random.Random(1))
        # rw: full and partial strobes, bits beyond the width dropped
        assert await m.write(ctx, SCRATCH, 0xAABBCCDD) == OKAY
        assert ctx.get(dut.scratch) == 0xAABBCCDD
        assert await m.read(ctx, SCRATCH) == (0xAABBCCDD, OKAY)
        assert await m.write(ctx, SCRATCH, 0x11223344, strb=0b0101) == OKAY
        assert await m.read(ctx, SCRATCH) == (0xAA22CC44, OKAY)
        assert await m.write(ctx, SCRATCH, 0x55667788, strb=0b1000) == OKAY
        assert await m.read(ctx, SCRATCH) == (0x5522CC44, OKAY)
        assert await m.write(ctx, SCRATCH, 0xFFFFFFFF, strb=0) == OKAY
        assert await m.read(ctx, SCRATCH) == (0x5522CC44, OKAY)
        assert ctx.get(dut.scratch) == 0x5522CC44
        assert await m.read(ctx, CONTROL) == (0, OKAY)
        assert await m.write(ctx, CONTROL, 0xFFFFFF5A) == OKAY
        assert await m.read(ctx, CONTROL) == (0x5A, OKAY)
        assert ctx.get(dut.control) == 0x5A
        assert await m.write(ctx, CONTROL, 0x000000A5, strb=0b1110) == OKAY
        assert await m.read(ctx, CONTROL) == (0x5A, OKAY)
        # ro: the value on the port; writes ignored with OKAY
        assert await m.read(ctx, STATUS) == (0x5, OKAY)
        state["status"] = 0xC
        await ctx.tick()
        assert await m.read(ctx, STATUS) == (0xC, OKAY)
        assert await m.write(ctx, STATUS, 0xFFFFFFFF) == OKAY
        assert await m.read(ctx, STATUS) == (0xC, OKAY)
        assert await m.write(ctx, CYCLES_HI, 0xFFFFFFFF) == OKAY
        # w1p reads 0
        assert await m.read(ctx, START) == (0, OKAY)
        # unmapped: reads 0 with SLVERR, writes change nothing and answer SLVERR
        for addr in (0x18, 0x1C, 0x100, 0xFFC):
            assert await m.read(ctx, addr) == (0, SLVERR), hex(addr)
            assert await m.write(ctx, addr, 0xFFFFFFFF) == SLVERR, hex(addr)
        assert await m.read(ctx, SCRATCH) == (0x5522CC44, OKAY)
        assert await m.read(ctx, CONTROL) == (0x5A, OKAY)
        assert ctx.get(dut.scratch) == 0x5522CC44
        assert ctx.get(dut.control) == 0x5A
        # the low two address bits are ignored
        assert await m.read(ctx, SCRATCH + 3) == (0x5522CC44, OKAY)
        seen["pulses"] = list(state["pulses"])
        seen["done"] = True

    run_sim(dut, [bench], [environment(dut, state)])
    assert seen.get("done")
    assert seen["pulses"] == [], "no write touched start, yet it pulsed"


def test_sim_w1p_pulse():
    dut = AXILiteRegisters(registers=REGISTERS)
    state = {}
    log = []

    async def bench(ctx):
        m = AxilMaster(dut, random.Random(2))
        # (data, strb, pulse expected)
        for data, strb, pulse in [(1, 0xF, True), (0, 0xF, False), (0xFFFFFFFF, 0xF, True),
                                  (1, 0b1110, False), (0xFFFFFFFE, 0xF, False), (1, 0b0001, True),
                                  (1, 0xF, True)]:
            before = len(state["pulses"])
            start_cycle = state["cycle"]
            assert await m.write(ctx, START, data, strb=strb) == OKAY
            for _ in range(3):
                await ctx.tick()
            log.append((pulse, state["pulses"][before:], start_cycle, state["cycle"]))
            assert ctx.get(dut.start) == 0
        assert await m.read(ctx, START) == (0, OKAY)

    run_sim(dut, [bench], [environment(dut, state)])
    assert len(log) == 7
    for pulse, pulses, begin, end in log:
        if pulse:
            assert len(pulses) == 1, f"expected one pulse cycle, got {pulses}"
            cycle, value = pulses[0]
            assert value == 1 and begin <= cycle < end
        else:
            assert pulses == [], f"unexpected pulse {pulses}"


def test_sim_w1p_wide_and_rw_wide():
    regs = [("go", "w1p", 40), ("wide", "rw", 40), ("big", "ro", 64)]
    dut = AXILiteRegisters(addr_width=5, registers=regs)
    pulses = []
    done = {}

    async def monitor(ctx):
        while True:
            _, _, go = await ctx.tick().sample(dut.go)
            if go:
                pulses.append(go)

    async def bench(ctx):
        m = AxilMaster(dut, random.Random(3))
        ctx.set(dut.big, 0x0123_4567_89AB_CDEF)
        assert await m.write(ctx, 0x00, 0x8000_0101, strb=0b1001) == OKAY
        assert await m.write(ctx, 0x04, 0xFFFF_FF81) == OKAY
        assert await m.write(ctx, 0x04, 0xFFFF_FF00, strb=0b1110) == OKAY
        assert await m.write(ctx, 0x08, 0xDEADBEEF) == OKAY
        assert await m.write(ctx, 0x0C, 0x0000_01A5) == OKAY
        assert await m.write(ctx, 0x08, 0x0000_7700, strb=0b0010) == OKAY
        assert ctx.get(dut.wide) == 0xA5_DEAD77EF
        assert await m.read(ctx, 0x08) == (0xDEAD77EF, OKAY)
        assert await m.read(ctx, 0x0C) == (0xA5, OKAY)
        assert await m.read(ctx, 0x00) == (0, OKAY)
        assert await m.read(ctx, 0x04) == (0, OKAY)
        assert await m.read(ctx, 0x10) == (0x89AB_CDEF, OKAY)
        ctx.set(dut.big, 0xFEDC_BA98_7654_3210)
        assert await m.read(ctx, 0x14) == (0x0123_4567, OKAY)   # latched by the low read
        assert await m.read(ctx, 0x10) == (0x7654_3210, OKAY)
        assert await m.read(ctx, 0x14) == (0xFEDC_BA98, OKAY)
        assert await m.read(ctx, 0x18) == (0, SLVERR)
        done["ok"] = True

    run_sim(dut, [bench], [monitor])
    assert done.get("ok")
    assert pulses == [0x8000_0001, 0x81_0000_0000]


def test_sim_cycles_read_atomically():
    dut = AXILiteRegisters(registers=REGISTERS)
    state = {}
    reads = []

    async def bench(ctx):
        m = AxilMaster(dut, random.Random(4), stall=0.5, max_delay=4)
        for _ in range(60):
            begin = state["cycle"]
            lo, rlo = await m.read(ctx, CYCLES_LO)
            hi, rhi = await m.read(ctx, CYCLES_HI)
            assert (rlo, rhi) == (OKAY, OKAY)
            reads.append((hi << 32 | lo, begin, state["cycle"]))

    run_sim(dut, [bench], [environment(dut, state)])
    assert len(reads) == 60
    for value, begin, end in reads:
        window = [state["history"][c] for c in range(begin, end + 1)]
        assert value in window, (f"torn 48-bit read {value:#014x}: not a value the counter held "
                                 f"in cycles {begin}..{end}")
    # the high word did change between the low and high reads, so the check has teeth
    assert len({v >> 32 for v, _, _ in reads}) > 10


@pytest.mark.parametrize("order", ["aw_first", "w_first", "together", "random"])
def test_sim_random_traffic(order):
    dut = AXILiteRegisters(registers=REGISTERS)
    state = {}
    done = {}
    rw = {CONTROL: ("control", 8), SCRATCH: ("scratch", 32)}
    read_lock = ChannelLock()     # the writer also reads back, sharing AR/R with the reader

    async def writer(ctx):
        rng = random.Random(f"w-{order}")
        m = AxilMaster(dut, rng, read_lock=read_lock)
        model = {CONTROL: 0, SCRATCH: 0}
        for _ in range(80):
            addr = rng.choice([CONTROL, SCRATCH])
            data, strb = rng.getrandbits(32), rng.randrange(16)
            assert await m.write(ctx, addr, data, strb=strb, order=order) == OKAY
            name, width = rw[addr]
            model[addr] = merge(model[addr], data, strb, width)
            assert ctx.get(getattr(dut, name)) == model[addr]
            got = await m.read(ctx, addr)
            assert got == (model[addr], OKAY), (hex(addr), hex(got[0]), hex(model[addr]))
        done["writer"] = True

    async def reader(ctx):
        # concurrent reads of registers the writer does not touch
        m = AxilMaster(dut, random.Random(f"r-{order}"), read_lock=read_lock)
        for i in range(80):
            state["status"] = i & 0xF
            await ctx.tick()
            assert await m.read(ctx, STATUS) == (i & 0xF, OKAY)
            assert await m.read(ctx, START) == (0, OKAY)
        done["reader"] = True

    run_sim(dut, [writer, reader], [environment(dut, state)])
    assert done == {"writer": True, "reader": True}
    assert state["pulses"] == []


def test_sim_back_to_back_throughput():
    """With no delays, a write lands two cycles after AW and W are raised together and the
    next write is accepted right after; a read answers on the edge after AR."""
    dut = AXILiteRegisters(registers=REGISTERS)
    trace = []

    async def bench(ctx):
        d = dut
        ctx.set(d.s_axil_bready, 1)
        ctx.set(d.s_axil_rready, 1)
        for i, data in enumerate([0x11, 0x22, 0x33]):
            ctx.set(d.s_axil_awaddr, SCRATCH)
            ctx.set(d.s_axil_wdata, data)
            ctx.set(d.s_axil_wstrb, 0xF)
            ctx.set(d.s_axil_awvalid, 1)
            ctx.set(d.s_axil_wvalid, 1)
            _, _, awready, wready = await ctx.tick().sample(d.s_axil_awready, d.s_axil_wready)
            assert awready and wready
            ctx.set(d.s_axil_awvalid, 0)
            ctx.set(d.s_axil_wvalid, 0)
            _, _, bvalid = await ctx.tick().sample(d.s_axil_bvalid)
            trace.append(("b0", bvalid))
            _, _, bvalid, scratch = await ctx.tick().sample(d.s_axil_bvalid, d.scratch)
            trace.append(("b1", bvalid, scratch))
        ctx.set(d.s_axil_araddr, SCRATCH)
        ctx.set(d.s_axil_arvalid, 1)
        _, _, arready = await ctx.tick().sample(d.s_axil_arready)
        ctx.set(d.s_axil_arvalid, 0)
        _, _, rvalid, rdata = await ctx.tick().sample(d.s_axil_rvalid, d.s_axil_rdata)
        trace.append(("r", arready, rvalid, rdata))

    run_sim(dut, [bench])
    assert trace == [("b0", 0), ("b1", 1, 0x11), ("b0", 0), ("b1", 1, 0x22),
                     ("b0", 0), ("b1", 1, 0x33), ("r", 1, 1, 0x33)]


def test_verilog_lint(tmp_path):
    from rsaccel.sim.cocotb_tb.runner import ensure_verilator_on_path, waiver_file
    source = tmp_path / "axil_regs.v"
    source.write_text(verilog.convert(AXILiteRegisters(registers=REGISTERS), name="axil_regs",
                                      emit_src=False))
    ensure_verilator_on_path()
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(waiver_file()), str(source)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "%Warning" not in proc.stderr and "%Error" not in proc.stderr, proc.stderr[-3000:]
    assert shutil.which("iverilog"), "iverilog not installed (scripts/test installs it)"
    proc = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"), str(source)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stderr.lower(), proc.stderr


# --- cocotb on the generated Verilog --------------------------------------------------------

def _cocotb_failures(results_xml):
    cases = list(ET.parse(results_xml).iter("testcase"))
    failed = [c.get("name") for c in cases
              if c.find("failure") is not None or c.find("error") is not None]
    return len(cases), failed


@pytest.mark.xdist_group("hdl-axil")
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb(hdl_build_root, simulator):
    pytest.importorskip("cocotbext.axi")
    from rsaccel.sim.cocotb_tb import runner as tb_runner

    build_dir = Path(hdl_build_root) / f"axil-{simulator}"
    build_dir.mkdir(parents=True, exist_ok=True)
    toplevel = "axil_regs"
    text = verilog.convert(AXILiteRegisters(registers=REGISTERS), name=toplevel, emit_src=False)
    source = build_dir / f"{toplevel}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)      # rewritten only when changed, so builds are reused

    runner = tb_runner.build_verilog(source, toplevel, simulator, build_dir)
    test_dir = build_dir / "run"
    test_dir.mkdir(exist_ok=True)
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)      # never read a stale file
    try:
        runner.test(hdl_toplevel=toplevel, test_module="rsaccel.sim.cocotb_tb.axil_tb",
                    build_dir=build_dir, test_dir=test_dir, results_xml=str(results),
                    timescale=("1ns", "1ps"))
    except SystemExit:      # the runner exits when a cocotb test fails; report which below
        pass
    assert results.exists(), f"cocotb wrote no results under {simulator}; see {test_dir}"
    count, failed = _cocotb_failures(results)
    assert count >= 5, f"only {count} cocotb tests ran; see {results}"
    assert not failed, f"cocotb tests failed under {simulator}: {failed}; see {results}"
