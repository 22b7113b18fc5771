"""RLC decoder: run-length coded stream words to data values (the DRAM-to-buffer ifmap path)."""

from amaranth import *
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import require_config

__all__ = ["RLCError", "RLCDecodeJob", "DecodedValue", "RLCDecoder"]


class RLCError(enum.Enum, shape=3):
    """Why a compressed stream was rejected (the cases :func:`rsaccel.sim.rlc.decode` raises for).

    Sticky until the decoder accepts its next job.
    """
    NONE = 0
    SPARE_BITS = 1        # a word has non-zero bits between its last pair and the flag
    OVERSHOOT = 2         # a pair's run + 1 values exceed the values still expected
    PADDING = 3           # a pair other than (0, 0) after the last value
    EARLY_LAST = 4        # the last flag before all values were decoded
    MISSING_LAST = 5      # all values decoded, or the declared words used up, without the flag
    WORDS_AFTER_LAST = 6  # the last flag on a word before the last declared word
    LEVEL_RANGE = 7       # a level outside the signed ``data_width`` range


def RLCDecodeJob():
    """Job of the decoder: ``count`` values coded in exactly ``words`` stream words."""
    return data.StructLayout({"count": 24, "words": 24})


def DecodedValue(data_width):
    """A decoded value and whether it is the last of its job."""
    return data.StructLayout({"value": signed(data_width), "last": 1})


class RLCDecoder(wiring.Component):
    """Decodes the run-length format of :mod:`rsaccel.sim.rlc` one value per cycle.

    A job (``count`` values in ``words`` words) is taken on ``job``; the words arrive on ``i``
    and the values leave on ``o`` in order. Words hold ``config.rlc_pairs_per_word`` pairs of
    ``rlc_run_width``-bit runs and ``rlc_level_width``-bit levels; bit ``stream_width - 1`` flags
    the last word. Every word of the job is checked the way the golden decoder checks a stream
    (see :class:`RLCError`); the declared word count lets the decoder catch words after the
    last flag without reading past its job. On an error the job ends at once: ``error`` says
    why, no value of the offending pair (or any later one) leaves, and no further word is taken.

    Latency and back-pressure
    -------------------------
    ``o`` is driven combinationally from the word held in a register: one value per cycle
    whatever the sparsity (a run of ``r`` zeros takes ``r + 1`` cycles with its level, the next
    word is taken in the cycle the last value of the current one leaves). Padding pairs cost no
    cycle. Back-pressure on ``o`` holds the word; ``i`` is taken only when the decoder can use it.
    After the last value, one cycle checks the rest of the final word; ``busy`` is high from
    accepting a job until it ends.

    Attributes
    ----------
    job : In(stream.Signature(RLCDecodeJob()))
    i : In(stream.Signature(stream_width))
    o : Out(stream.Signature(DecodedValue(data_width)))
    error : Out(RLCError)
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(RLCDecodeJob())),
            "i": In(stream.Signature(config.stream_width)),
            "o": Out(stream.Signature(DecodedValue(config.data_width))),
            "error": Out(RLCError),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        sw, dw = cfg.stream_width, cfg.data_width
        rw, lw = cfg.rlc_run_width, cfg.rlc_level_width
        pw = rw + lw
        npairs = cfg.rlc_pairs_per_word

        active = Signal()
        held = Signal()                      # ``word`` holds the current word
        word = Signal(sw)
        k = Signal(range(npairs + 1))        # current pair; npairs: the word is used up
        zeros = Signal(rw)                   # zeros of the current pair already sent
        left = Signal(24)                    # values still to send
        words_after = Signal(24)             # words still to take after the held one
        m.d.comb += self.busy.eq(active)

        run = Signal(rw)
        level = Signal(signed(lw))
        rest_zero = Signal()                 # pairs k.. are all (0, 0)
        with m.Switch(k):
            for j in range(npairs + 1):
                with m.Case(j):
                    if j < npairs:
                        m.d.comb += [run.eq(word[j * pw:j * pw + rw]),
                                     level.eq(word[j * pw + rw:(j + 1) * pw])]
                    m.d.comb += rest_zero.eq(word[j * pw:npairs * pw] == 0
                                             if j < npairs else 1)
        flag = word[sw - 1]
        spare_bad = (word[npairs * pw:sw - 1] != 0) if npairs * pw < sw - 1 else C(0)
        if lw > dw:
            level_ok = (level >= -(1 << (dw - 1))) & (level < (1 << (dw - 1)))
        else:
            level_ok = C(1)

        ok = self.error == RLCError.NONE
        in_pair = active & held & ok & (left != 0) & (k != npairs)
        starting = zeros == 0
        overshoot = in_pair & starting & (run >= left)        # run + 1 > left
        bad_level = in_pair & starting & ~level_ok
        m.d.comb += [
            self.o.valid.eq(in_pair & ~spare_bad & ~overshoot & ~bad_level),
            self.o.payload.value.eq(Mux(zeros == run, level[:dw], 0)),
            self.o.payload.last.eq(left == 1),
        ]
        sent = self.o.valid & self.o.ready
        pair_done = sent & (zeros == run)
        # the last value of a word leaves and the job goes on: take the next word right away
        release = pair_done & (k == npairs - 1) & (left != 1) & ~flag & (words_after != 0)

        m.d.comb += self.i.ready.eq(active & ok & ((~held & (words_after != 0)) | release))
        m.d.comb += self.job.ready.eq(~active)

        def fail(code):
            m.d.sync += [self.error.eq(code), active.eq(0), held.eq(0)]

        with m.If(sent):
            m.d.sync += left.eq(left - 1)
            with m.If(zeros == run):
                m.d.sync += [zeros.eq(0), k.eq(k + 1)]
            with m.Else():
                m.d.sync += zeros.eq(zeros + 1)
        with m.If(release):
            m.d.sync += held.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [word.eq(self.i.payload), held.eq(1), k.eq(0), zeros.eq(0),
                         words_after.eq(words_after - 1)]

        # checks of the held word; the first failing one names the error
        with m.If(active & ok):
            with m.If(held & spare_bad):
                fail(RLCError.SPARE_BITS)
            with m.Elif(overshoot):
                fail(RLCError.OVERSHOOT)
            with m.Elif(bad_level):
                fail(RLCError.LEVEL_RANGE)
            with m.Elif(held & (left == 0)):
                # all values sent: the rest of this word is padding, and it is the last word
                with m.If(~rest_zero):
                    fail(RLCError.PADDING)
                with m.Elif(~flag):
                    fail(RLCError.MISSING_LAST)
                with m.Elif(words_after != 0):
                    fail(RLCError.WORDS_AFTER_LAST)
                with m.Else():
                    m.d.sync += [active.eq(0), held.eq(0)]
            with m.Elif(held & (k == npairs)):
                # a word used up with values still expected (the fast path did not apply)
                with m.If(flag):
                    fail(RLCError.EARLY_LAST)
                with m.Else():
                    fail(RLCError.MISSING_LAST)
            with m.Elif(~held & (words_after == 0)):
                fail(RLCError.MISSING_LAST)                   # a job of zero words

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(1), held.eq(0), left.eq(self.job.payload.count),
                         words_after.eq(self.job.payload.words), self.error.eq(RLCError.NONE)]
        return m
