"""RLC encoder: buffer-word fragments to run-length coded stream words (the buffer-to-DRAM
ofmap path)."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import require_config
from .glb import WordFragment

__all__ = ["RLCEncoder"]


class RLCEncoder(wiring.Component):
    """Encodes values in the run-length format of :mod:`rsaccel.sim.rlc`, word for word equal to
    the golden :func:`rsaccel.sim.rlc.encode`.

    A job (``job.payload`` = the number of values) is taken on ``job``; the values arrive on
    ``i`` as :func:`~rsaccel.hw.glb.WordFragment` s (any contiguous ``mask``, from any lane, as
    :class:`~rsaccel.hw.element_reader.ElementReader` sends them; lanes in lane order, fragments
    in stream order; the fragments' ``last`` bits are not used, the count ends the job). The
    coded words leave on ``o``, the last one with its flag bit (``stream_width - 1``) set; a job
    of zero values gives one word holding only the flag. A fragment with more values than the
    job has left is a caller error: its extra values are dropped.

    The greedy code is produced on the fly: a value closes a pair (``run`` zeros before it,
    then the value) when it is non-zero, when ``2**rlc_run_width - 1`` zeros are already
    pending, or when it is the job's last value; otherwise it only counts as a pending zero.
    Per fragment, a chain over the lanes finds the pairs it closes; they are appended to a
    buffer of ``rlc_pairs_per_word + lanes - 1`` pairs, from which a word leaves whenever it
    holds ``rlc_pairs_per_word`` pairs, or at the end of the job (padded with (0, 0) pairs and
    flagged).

    Latency and back-pressure
    -------------------------
    A whole fragment (up to ``lanes`` values) per cycle and at most one word per cycle, so a
    job of ``n`` values from lane 0 takes about ``max(ceil(n / lanes), words)`` cycles while
    ``o`` keeps up. A fragment taken in cycle ``t`` is in the pair buffer in cycle ``t + 1``; a
    word is registered on ``o`` (valid from the cycle after) in a cycle where the buffer holds
    enough pairs and ``o`` is free or being emptied; the last word is valid two cycles after
    the job's last fragment was taken (more if more than one word is still buffered). ``i`` is
    taken only while the buffer, after the word leaving in that cycle, has room for ``lanes``
    pairs, so dense data (more pairs a fragment than a word holds) and back-pressure on ``o``
    hold the input and nothing is lost; ``i.ready`` depends on ``o.ready`` combinationally.
    ``busy`` is high from accepting a job until its last word has left.

    Attributes
    ----------
    job : In(stream.Signature(24))
    i : In(stream.Signature(WordFragment(config)))
    o : Out(stream.Signature(stream_width))
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(24)),
            "i": In(stream.Signature(WordFragment(config))),
            "o": Out(stream.Signature(config.stream_width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        sw, dw, lanes = cfg.stream_width, cfg.data_width, cfg.lanes
        rw, lw = cfg.rlc_run_width, cfg.rlc_level_width
        pw = rw + lw
        npairs = cfg.rlc_pairs_per_word
        max_run = (1 << rw) - 1
        cap = npairs + lanes - 1           # pair buffer capacity

        active = Signal()
        left = Signal(24)                  # values still to take
        zeros = Signal(rw)                 # zeros pending before the next pair's level
        held = Signal(range(cap + 1))      # pairs in the buffer; slots from ``held`` on are 0
        slots = [Signal(pw, name=f"slot{j}") for j in range(cap)]
        m.d.comb += [self.busy.eq(active | self.o.valid), self.job.ready.eq(~self.busy)]

        # a word leaves: P pairs, or the rest (padded, flagged) once all values are taken
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        done = left == 0
        final = Signal()
        emit = Signal()
        m.d.comb += [
            final.eq(done & (held <= npairs)),
            emit.eq(active & (~self.o.valid | self.o.ready) & ((held >= npairs) | done)),
        ]
        with m.If(emit):
            m.d.sync += [self.o.payload.eq(Cat(*slots[:npairs])),
                         self.o.payload[sw - 1].eq(final), self.o.valid.eq(1)]
            with m.If(final):
                m.d.sync += active.eq(0)
        base = Signal(range(cap + 1))      # pairs kept after this cycle's word
        m.d.comb += base.eq(Mux(emit, Mux(final, 0, held - npairs), held))

        # a fragment is taken only when the buffer surely has room for ``lanes`` pairs
        fire = Signal()
        m.d.comb += [self.i.ready.eq(active & ~done & (base < npairs)),
                     fire.eq(self.i.valid & self.i.ready)]

        # the chain over the lanes: which values close a pair, their runs and buffer slots
        frag = self.i.payload
        left_sat = Signal(range(lanes + 2))   # values left, lanes + 1 standing for more
        m.d.comb += left_sat.eq(Mux(left > lanes, lanes + 1, left))
        zero_in = zeros                    # pending zeros before lane k
        seen = C(0, 1)                     # values of the fragment in lanes < k
        closed = C(0, 1)                   # pairs closed in lanes < k
        pairs = []
        for k in range(lanes):
            value = frag.data[k * dw:(k + 1) * dw].as_signed()
            count = Signal(range(lanes + 1), name=f"count{k}")
            m.d.comb += count.eq(seen + frag.mask[k])
            valid = Signal(name=f"valid{k}")
            close = Signal(name=f"close{k}")
            m.d.comb += [
                valid.eq(frag.mask[k] & (count <= left_sat)),
                close.eq(valid & ((value != 0) | (zero_in == max_run) | (count == left_sat))),
            ]
            level = Signal(signed(lw), name=f"level{k}")
            pair = Signal(pw, name=f"pair{k}")
            slot = Signal(range(cap + 1), name=f"slot_of{k}")
            m.d.comb += [level.eq(value), pair.eq(Cat(zero_in, level)), slot.eq(base + closed)]
            pairs.append((close, pair, slot, k))
            zero_out = Signal(rw, name=f"zeros{k}")
            m.d.comb += zero_out.eq(Mux(close, 0, Mux(valid, zero_in + 1, zero_in)))
            closed_out = Signal(range(k + 2), name=f"closed{k}")
            m.d.comb += closed_out.eq(closed + close)
            zero_in, seen, closed = zero_out, count, closed_out
        taken = Signal(range(lanes + 1))   # values of the fragment in the job: min(seen, left)
        m.d.comb += taken.eq(Mux(seen <= left_sat, seen, left_sat))

        # the buffer: shift out the word leaving, OR in the new pairs (their slots are zero)
        for j in range(cap):
            kept = (slots[j + npairs] if j + npairs < cap else C(0, pw))
            new = Mux(emit, kept, slots[j])
            for close, pair, slot, k in pairs:
                if j <= npairs - 1 + k:    # base < npairs and at most k earlier pairs
                    new = new | Mux(fire & close & (slot == j), pair, 0)
            m.d.sync += slots[j].eq(new)
        m.d.sync += held.eq(Mux(fire, base + closed, base))
        with m.If(fire):
            m.d.sync += [zeros.eq(zero_in), left.eq(left - taken)]

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(1), left.eq(self.job.payload), zeros.eq(0), held.eq(0)]
        return m
