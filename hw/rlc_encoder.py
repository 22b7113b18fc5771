"""RLC encoder: data values to run-length coded stream words (the buffer-to-DRAM ofmap path)."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import require_config

__all__ = ["RLCEncoder"]


class RLCEncoder(wiring.Component):
    """Encodes values in the run-length format of :mod:`rsaccel.sim.rlc`, word for word equal to
    the golden :func:`rsaccel.sim.rlc.encode`.

    A job (``job.payload`` = the number of values) is taken on ``job``; the values arrive on
    ``i`` and the coded words leave on ``o``, the last one with its flag bit
    (``stream_width - 1``) set; a job of zero values gives one word holding only the flag.
    The greedy code is produced on the fly: a value closes a pair (``run`` zeros before it,
    then the value) when it is non-zero, when ``2**rlc_run_width - 1`` zeros are already
    pending, or when it is the job's last value; otherwise it only counts as a pending zero.

    Latency and back-pressure
    -------------------------
    One value per cycle while ``o`` keeps up. A word is registered on ``o`` the cycle after its
    last pair is formed; ``i`` is taken only while that register is free or being emptied, so
    back-pressure on ``o`` holds the input and nothing is lost. ``busy`` is high from accepting
    a job until its last word has left.

    Attributes
    ----------
    job : In(stream.Signature(24))
    i : In(stream.Signature(signed(data_width)))
    o : Out(stream.Signature(stream_width))
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(24)),
            "i": In(stream.Signature(signed(config.data_width))),
            "o": Out(stream.Signature(config.stream_width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        sw = cfg.stream_width
        rw, lw = cfg.rlc_run_width, cfg.rlc_level_width
        pw = rw + lw
        npairs = cfg.rlc_pairs_per_word
        max_run = (1 << rw) - 1
        flag = Const(1 << (sw - 1), sw)

        active = Signal()
        left = Signal(24)                 # values still to take
        zeros = Signal(rw)                # zeros pending before the next pair's level
        acc = Signal(sw)                  # pairs of the word being formed
        j = Signal(range(npairs))         # next pair slot in ``acc``
        m.d.comb += self.busy.eq(active | self.o.valid)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        can_emit = ~self.o.valid | self.o.ready
        m.d.comb += [
            self.job.ready.eq(~self.busy),
            self.i.ready.eq(active & (left != 0) & can_emit),
        ]

        value = self.i.payload
        last = left == 1
        close = (value != 0) | (zeros == max_run) | last
        level = Signal(signed(lw))        # the value sign-extended to the level field
        pair = Signal(pw)
        m.d.comb += [level.eq(value), pair.eq(Cat(zeros, level))]
        placed = Signal(sw)
        with m.Switch(j):
            for slot in range(npairs):
                with m.Case(slot):
                    m.d.comb += placed.eq(acc | (pair << (slot * pw)))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += left.eq(left - 1)
            with m.If(close):
                m.d.sync += zeros.eq(0)
                with m.If((j == npairs - 1) | last):
                    m.d.sync += [self.o.payload.eq(Mux(last, placed | flag, placed)),
                                 self.o.valid.eq(1), acc.eq(0), j.eq(0)]
                with m.Else():
                    m.d.sync += [acc.eq(placed), j.eq(j + 1)]
            with m.Else():
                m.d.sync += zeros.eq(zeros + 1)
            with m.If(last):
                m.d.sync += active.eq(0)
        # a job of no values: one word with only the flag
        with m.If(active & (left == 0) & can_emit):
            m.d.sync += [self.o.payload.eq(flag), self.o.valid.eq(1), active.eq(0)]

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(1), left.eq(self.job.payload), zeros.eq(0), acc.eq(0),
                         j.eq(0)]
        return m
