"""Board self-test: streams a built-in layer through the accelerator and checks every result.

The self-test keeps the whole accelerator observable on a board with nothing but LEDs, so Yosys
prunes none of it and the resource report is honest: the command stream comes from a block-RAM
ROM, every output word is compared with the golden model's result from a second ROM, the AXI4-Lite
interface is written (the watchdog) and read (the status and then every register, folded into a
read-back signature shown on the LEDs).
"""

from dataclasses import dataclass

import numpy as np
from amaranth import *
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import Out

from ..config import require_config
from ..hw.accelerator import STATUS_FIELDS, Accelerator

__all__ = ["SelfTestProgram", "selftest_program", "SelfTest"]


@dataclass(frozen=True)
class SelfTestProgram:
    """What a self-test streams in and expects back.

    ``words`` are the input stream words; ``expected`` the ``(value, mask, last)`` triples of the
    output words, the SYNC marker last (see :func:`rsaccel.gen.compiler.expected_output_words`).
    """
    words: tuple
    expected: tuple
    layer: object = None


def selftest_program(config, layer=None, *, seed=1):
    """The self-test program for ``config``: a small seeded CONV layer and its golden result.

    The default layer (2 channels, 4 filters, 6 x 6 input, 3 x 3 filters with padding, ReLU and
    a rounding shift) uses every network of the array, psum accumulation across channels, the
    output requantisation and a READ; with ``rows < 3`` the filter is ``rows`` high instead.
    """
    from ..gen.compiler import Layer, compile_layer, expected_output_words
    from ..sim.golden import conv2d
    if layer is None:
        r = min(3, config.rows)
        layer = Layer(N=1, C=2, M=4, H=6, W=6, R=r, S=3, stride=1, pad=1, relu=True,
                      out_shift=config.data_width // 2)
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (config.data_width - 1)), 1 << (config.data_width - 1)
    ifmap = rng.integers(lo, hi, size=(layer.N, layer.C, layer.H, layer.W))
    ifmap[rng.random(ifmap.shape) < 0.3] = 0
    weights = rng.integers(lo, hi, size=(layer.M, layer.C // layer.groups, layer.R, layer.S))
    bias = rng.integers(lo, hi, size=layer.M)
    compiled = compile_layer(config, layer, ifmap, weights, bias)
    ofmap = conv2d(ifmap, weights, bias, stride=layer.stride, pad=layer.pad, groups=layer.groups,
                   relu=layer.relu, out_shift=layer.out_shift, data_width=config.data_width,
                   acc_width=config.acc_width)
    return SelfTestProgram(words=tuple(int(w) for w in compiled.words),
                           expected=tuple(expected_output_words(config, compiled, ofmap)),
                           layer=layer)


class _LFSR(wiring.Component):
    """16-bit maximal-length Galois LFSR (taps 16, 14, 13, 11); ``bit`` changes every cycle."""
    bits: Out(16)

    def __init__(self, seed):
        self._seed = seed & 0xFFFF or 1
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        state = Signal(16, init=self._seed)
        feedback = Mux(state[0], 0xB400, 0)
        m.d.sync += state.eq((state >> 1) ^ feedback)
        m.d.comb += self.bits.eq(state)
        return m


class SelfTest(wiring.Component):
    """Runs one layer through an :class:`~rsaccel.hw.accelerator.Accelerator` and checks it.

    Sequence after reset: write the ``timeout`` register (so a hung core reports TIMEOUT rather
    than hanging), stream ``program.words`` into ``s_axis`` while checking every ``m_axis`` word
    against ``program.expected`` under its mask (with the expected ``tlast``; no word may follow
    the SYNC marker), read ``status`` (its error fields must be zero), then read every register
    word of the map and fold it into ``readback`` (rotate left by one, XOR); ``timeout`` must
    read back the value written. Then ``done`` rises with exactly one of ``passed`` or
    ``failed``, and the verdict is latched: nothing that happens afterwards changes it.

    Both streams run with pseudo-random stalls from an LFSR (``stall=True``): idle cycles on
    ``s_axis`` and back-pressure on ``m_axis``, so the board exercises the same flow control as
    the simulations. The input words reach ``s_axis`` through a three-entry
    :class:`~amaranth.lib.fifo.SyncFIFOBuffered` (registered ready and data), so neither the
    ROM's read nor the feeder's counters share a path with the core's input handshake. A self-test watchdog fails the run if neither stream nor the AXI4-Lite bus
    moves for ``watchdog`` cycles.

    Parameters
    ----------
    config : AccelConfig
    program : SelfTestProgram
    stall : bool
        Insert LFSR-driven stalls on both streams.
    watchdog : int
        Cycles without progress after which the self-test fails (also written to the core's
        ``timeout`` register).

    Attributes
    ----------
    done, passed, failed : Out(1)
    readback : Out(32)
        Register read-back signature (for keeping the register file and counters observable).
    mismatches : Out(16)
        Number of output words that differed from the expected ones (saturating).
    """

    done: Out(1)
    passed: Out(1)
    failed: Out(1)
    readback: Out(32)
    mismatches: Out(16)

    def __init__(self, config, program, *, stall=True, watchdog=1 << 16):
        require_config(config)
        if not isinstance(program, SelfTestProgram):
            raise TypeError(f"Program must be a SelfTestProgram, not {program!r}")
        if not program.words or not program.expected:
            raise ValueError("Program must have input words and expected output words")
        if not isinstance(watchdog, int) or not 16 <= watchdog < 1 << 32:
            raise ValueError(f"Watchdog must be an integer in [16, 2**32), not {watchdog!r}")
        self._config = config
        self._program = program
        self._stall = bool(stall)
        self._watchdog = watchdog
        self.accelerator = Accelerator(config)
        super().__init__()

    def elaborate(self, platform):
        cfg, prog = self._config, self._program
        sw = cfg.stream_width
        m = Module()
        m.submodules.acc = acc = self.accelerator
        m.submodules.lfsr = lfsr = _LFSR(0xACE1)
        regs = {r["name"]: r for r in acc.register_map}
        last = acc.register_map[-1]
        map_words = (last["offset"] + 4 * ((last["width"] + 31) // 32)) // 4

        # ROMs: input words, expected values and masks of the output words.
        n_in, n_out = len(prog.words), len(prog.expected)
        m.submodules.rom_in = rom_in = memory.Memory(shape=sw, depth=n_in, init=prog.words)
        m.submodules.rom_exp = rom_exp = memory.Memory(
            shape=2 * sw + 1, depth=n_out,
            init=[v | (mask << sw) | (last << 2 * sw) for v, mask, last in prog.expected])

        running = Signal()      # streams enabled (after the watchdog write)
        progress = Signal()     # something moved this cycle

        # Input feeder: rp_in.data holds the word offered to the input buffer while s_valid
        # is set. The buffer (registered ready and output) keeps the ROM's output and the
        # accelerator's input handshake out of each other's paths.
        rp_in = rom_in.read_port()
        m.submodules.in_buffer = in_buffer = fifo.SyncFIFOBuffered(width=sw, depth=3)
        feed_addr = Signal(range(n_in + 1))
        s_valid = Signal()
        go_in = lfsr.bits[0] | lfsr.bits[3] if self._stall else C(1)
        m.d.comb += [
            rp_in.addr.eq(Mux(feed_addr < n_in, feed_addr, 0)),
            rp_in.en.eq(~s_valid | in_buffer.w_rdy),
            in_buffer.w_data.eq(rp_in.data),
            in_buffer.w_en.eq(s_valid),
            acc.s_axis_tdata.eq(in_buffer.r_data),
            acc.s_axis_tvalid.eq(in_buffer.r_rdy),
            in_buffer.r_en.eq(acc.s_axis_tready),
            acc.s_axis_tlast.eq(0),
        ]
        with m.If(rp_in.en):
            load = running & go_in & (feed_addr < n_in)
            m.d.sync += s_valid.eq(load)
            with m.If(load):
                m.d.sync += feed_addr.eq(feed_addr + 1)
        with m.If(s_valid & in_buffer.w_rdy):
            m.d.comb += progress.eq(1)

        # Output checker: rp_exp.data holds the expectation of output word ``check_index``.
        rp_exp = rom_exp.read_port()
        check_index = Signal(range(n_out + 1))
        primed = Signal()
        outputs_done = Signal()
        mismatch = Signal()
        mismatches = Signal(16)
        ready_out = Signal()
        m.d.sync += primed.eq(1)
        m.d.comb += ready_out.eq(primed & running & (lfsr.bits[5] | lfsr.bits[9]
                                                     if self._stall else 1))
        m.d.comb += acc.m_axis_tready.eq(ready_out)
        taken = Signal()
        m.d.comb += taken.eq(acc.m_axis_tvalid & ready_out)
        m.d.comb += [
            rp_exp.addr.eq(Mux(taken & (check_index < n_out - 1), check_index + 1,
                               Mux(check_index < n_out, check_index, 0))),
            rp_exp.en.eq(1),
        ]
        exp_value, exp_mask, exp_last = rp_exp.data[:sw], rp_exp.data[sw:2 * sw], rp_exp.data[-1]
        with m.If(taken):
            m.d.comb += progress.eq(1)
            is_last = check_index == n_out - 1
            word_bad = (outputs_done | (((acc.m_axis_tdata ^ exp_value) & exp_mask) != 0)
                        | (acc.m_axis_tlast != exp_last))
            with m.If(word_bad):
                m.d.sync += mismatch.eq(1)
                with m.If(mismatches != 0xFFFF):
                    m.d.sync += mismatches.eq(mismatches + 1)
            with m.If(~outputs_done):
                m.d.sync += check_index.eq(check_index + 1)
                with m.If(is_last):
                    m.d.sync += outputs_done.eq(1)

        # AXI4-Lite master: one write, then reads.
        # the address is valid from the first cycle: the write's AW handshake may happen at once
        axil_addr = Signal(12, init=regs["timeout"]["offset"])
        read_data = Signal(32)
        bus_error = Signal()
        status_bad = Signal()
        signature = Signal(32)
        scan_word = Signal(range(map_words + 1))
        aw_done = Signal()
        w_done = Signal()
        finished = Signal()
        verdict_ok = Signal()       # latched as the self-test finishes: later words change nothing
        timed_out = Signal()
        idle = Signal(range(self._watchdog + 1))

        m.d.comb += [
            acc.s_axil_awaddr.eq(axil_addr),
            acc.s_axil_araddr.eq(axil_addr),
            acc.s_axil_wdata.eq(self._watchdog),
            acc.s_axil_wstrb.eq(0xF),
            acc.s_axil_awprot.eq(0),
            acc.s_axil_arprot.eq(0),
        ]
        error_shift, error_width = STATUS_FIELDS["error"]
        pe_shift, pe_width = STATUS_FIELDS["pe_error"]

        with m.FSM():
            with m.State("WRITE_TIMEOUT"):
                m.d.comb += [acc.s_axil_awvalid.eq(~aw_done), acc.s_axil_wvalid.eq(~w_done)]
                with m.If(acc.s_axil_awvalid & acc.s_axil_awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(acc.s_axil_wvalid & acc.s_axil_wready):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done):
                    m.next = "WRITE_RESPONSE"
            with m.State("WRITE_RESPONSE"):
                m.d.comb += acc.s_axil_bready.eq(1)
                with m.If(acc.s_axil_bvalid):
                    m.d.comb += progress.eq(1)
                    with m.If(acc.s_axil_bresp != 0):
                        m.d.sync += bus_error.eq(1)
                    m.d.sync += running.eq(1)
                    m.next = "STREAM"
            with m.State("STREAM"):
                with m.If(outputs_done):
                    m.d.sync += axil_addr.eq(regs["status"]["offset"])
                    m.next = "READ_STATUS"
            with m.State("READ_STATUS"):
                m.d.comb += acc.s_axil_arvalid.eq(1)
                with m.If(acc.s_axil_arready):
                    m.next = "STATUS_DATA"
            with m.State("STATUS_DATA"):
                m.d.comb += acc.s_axil_rready.eq(1)
                with m.If(acc.s_axil_rvalid):
                    m.d.comb += progress.eq(1)
                    with m.If((acc.s_axil_rresp != 0)
                              | (acc.s_axil_rdata[error_shift:error_shift + error_width] != 0)
                              | (acc.s_axil_rdata[pe_shift:pe_shift + pe_width] != 0)):
                        m.d.sync += status_bad.eq(1)
                    m.d.sync += [axil_addr.eq(0), scan_word.eq(0)]
                    m.next = "SCAN_ADDRESS"
            with m.State("SCAN_ADDRESS"):
                m.d.comb += acc.s_axil_arvalid.eq(1)
                with m.If(acc.s_axil_arready):
                    m.next = "SCAN_DATA"
            with m.State("SCAN_DATA"):
                m.d.comb += acc.s_axil_rready.eq(1)
                with m.If(acc.s_axil_rvalid):
                    m.d.comb += progress.eq(1)
                    m.d.sync += [
                        signature.eq(signature.rotate_left(1) ^ acc.s_axil_rdata),
                        axil_addr.eq(axil_addr + 4),
                        scan_word.eq(scan_word + 1),
                    ]
                    # the timeout register must read back what was written to it
                    timeout_word = regs["timeout"]["offset"] // 4
                    with m.If((acc.s_axil_rresp != 0)
                              | ((scan_word == timeout_word)
                                 & (acc.s_axil_rdata != self._watchdog))):
                        m.d.sync += bus_error.eq(1)
                    with m.If(scan_word == map_words - 1):
                        m.d.sync += [finished.eq(1),
                                     verdict_ok.eq(~mismatch & ~bus_error & ~status_bad
                                                   & (acc.s_axil_rresp == 0))]
                        m.next = "DONE"
                    with m.Else():
                        m.next = "SCAN_ADDRESS"
            with m.State("DONE"):
                pass

        # Watchdog: no progress for ``watchdog`` cycles ends the self-test as failed.
        with m.If(~finished & ~timed_out):
            with m.If(progress):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self._watchdog):
                m.d.sync += timed_out.eq(1)
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        done = finished | timed_out
        ok = finished & verdict_ok & ~timed_out
        m.d.comb += [
            self.done.eq(done),
            self.passed.eq(done & ok),
            self.failed.eq(done & ~ok),
            self.readback.eq(signature),
            self.mismatches.eq(mismatches),
        ]
        return m
