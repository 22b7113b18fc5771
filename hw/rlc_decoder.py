"""RLC decoder: run-length coded stream words to buffer-word fragments (the DRAM-to-buffer path)."""

from amaranth import *
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .glb import WordFragment

__all__ = ["RLCError", "RLCDecodeJob", "RLCDecoder"]


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
    """Job of the decoder: ``count`` values coded in exactly ``words`` stream words, the first
    value going to buffer lane ``lane``."""
    return data.StructLayout({"count": 24, "words": 24, "lane": 8})


class RLCDecoder(wiring.Component):
    """Decodes the run-length format of :mod:`rsaccel.sim.rlc` into buffer-word fragments.

    A job (``count`` values in ``words`` words, the first one for lane ``lane``) is taken on
    ``job``; the words arrive on ``i``; the values leave on ``o`` in order, as
    :func:`~rsaccel.hw.glb.WordFragment` s: each fragment holds the next values, at most up to
    the end of the current buffer word, in their lanes, so a writer stores one fragment per
    cycle (``last`` on the job's final fragment). Words hold ``config.rlc_pairs_per_word`` pairs of
    ``rlc_run_width``-bit runs and ``rlc_level_width``-bit levels; bit ``stream_width - 1``
    flags the last word. Every word of the job is checked the way the golden decoder checks a
    stream (see :class:`RLCError`); the declared word count lets the decoder catch words after
    the last flag without reading past its job. On an error the job ends at once: ``error``
    says why, no value of the offending pair (or any later one) leaves, and no further word is
    taken.

    How it works: the decoder holds the current word and the next one. A fragment is formed
    from the pairs that follow the current position, across both words: pair ``i`` ends at
    value ``e_i`` (a running sum of ``run + 1``), so the value in lane ``lane + t`` is the
    level of the pair with ``e_i = t + 1`` and zero otherwise. A pair that fails a check, or
    one of the next word while the current word may not be followed, ends the fragment early;
    the check fires when the pair becomes the head.

    Latency and back-pressure
    -------------------------
    Up to ``lanes`` values per cycle, whatever the sparsity: a fragment fills its buffer word
    unless the held words run out of values, so a job of ``n`` values needs about
    ``max(n / lanes, words)`` cycles plus three for its start and end (a word is taken in the
    cycle the one before it is used up, so dense data runs at one stream word a cycle).
    Back-pressure on ``o`` holds everything; ``i`` is taken only while the next-word register
    is free or being emptied. ``busy`` is high from accepting a job until it ends.

    Attributes
    ----------
    job : In(stream.Signature(RLCDecodeJob()))
    i : In(stream.Signature(stream_width))
    o : Out(stream.Signature(WordFragment(config)))
    error : Out(RLCError)
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(RLCDecodeJob())),
            "i": In(stream.Signature(config.stream_width)),
            "o": Out(stream.Signature(WordFragment(config))),
            "error": Out(RLCError),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        sw, dw, lanes = cfg.stream_width, cfg.data_width, cfg.lanes
        lane_bits = exact_log2(lanes)
        rw, lw = cfg.rlc_run_width, cfg.rlc_level_width
        pw = rw + lw
        npairs = cfg.rlc_pairs_per_word
        ncand = min(lanes, 2 * npairs)      # pairs that can end in one fragment

        active = Signal()
        cur = Signal(sw)                     # the current word
        cur_held = Signal()
        nxt = Signal(sw)                     # the word after it
        nxt_held = Signal()
        k = Signal(range(npairs + 1))        # current pair of ``cur``; npairs: used up
        zeros = Signal(rw)                   # values of the current pair already sent
        left = Signal(24)                    # values still to send
        words_left = Signal(24)              # declared words not yet taken
        lane = Signal(max(lane_bits, 1))     # lane of the next value
        m.d.comb += self.busy.eq(active)

        def spare(word):
            return (word[npairs * pw:sw - 1] != 0) if npairs * pw < sw - 1 else C(0)

        def level_ok(level):
            if lw > dw:
                return (level >= -(1 << (dw - 1))) & (level < (1 << (dw - 1)))
            return C(1)

        cur_flag = cur[sw - 1]
        ok = self.error == RLCError.NONE
        cur_usable = cur_held & ~spare(cur)
        nxt_usable = cur_usable & ~cur_flag & nxt_held & ~spare(nxt)
        # both words' pairs in one index space: 0..npairs-1 current, npairs.. next
        pairs = []
        for w, usable in ((cur, cur_usable), (nxt, nxt_usable)):
            for j in range(npairs):
                pairs.append((w[j * pw:j * pw + rw], w[j * pw + rw:(j + 1) * pw].as_signed(),
                              usable))

        # the head pair (for the checks) and the rest of the current word
        head_run = Signal(rw)
        head_level = Signal(signed(lw))
        rest_zero = Signal()                 # pairs k.. of ``cur`` are all (0, 0)
        with m.Switch(k):
            for j in range(npairs + 1):
                with m.Case(j):
                    if j < npairs:
                        m.d.comb += [head_run.eq(pairs[j][0]), head_level.eq(pairs[j][1])]
                    m.d.comb += rest_zero.eq(cur[j * pw:npairs * pw] == 0 if j < npairs else 1)

        # candidates: the pairs from position k on, ending at e_i values into the fragment
        ends, oks, levels = [], [], []
        prev_end, prev_ok = C(0, 1), C(1, 1)
        end_width = (ncand << rw).bit_length() + 1
        for i in range(ncand):
            run = Signal(rw, name=f"cand{i}_run")
            level = Signal(signed(lw), name=f"cand{i}_level")
            usable = Signal(name=f"cand{i}_usable")
            with m.Switch(k):
                for j in range(npairs + 1):
                    if j + i < 2 * npairs:
                        with m.Case(j):
                            r, lv, u = pairs[j + i]
                            m.d.comb += [run.eq(r), level.eq(lv), usable.eq(u)]
            end = Signal(end_width, name=f"cand{i}_end")
            length = run + 1 - zeros if i == 0 else run + 1
            m.d.comb += end.eq(prev_end + length)
            cand_ok = Signal(name=f"cand{i}_ok")
            m.d.comb += cand_ok.eq(prev_ok & usable & level_ok(level) & (end <= left))
            ends.append(end)
            oks.append(cand_ok)
            levels.append(level)
            prev_end, prev_ok = end, cand_ok

        available = Signal(end_width)        # values the usable pairs hold
        for end, cand_ok in zip(ends, oks):
            with m.If(cand_ok):
                m.d.comb += available.eq(end)
        room = Signal(range(lanes + 1))
        m.d.comb += room.eq(lanes - lane if lane_bits else 1)
        n = Signal(range(lanes + 1))         # values in this fragment
        m.d.comb += n.eq(Mux(available < room, available, room))

        fragment = self.o.payload
        for t in range(lanes):
            if not lane_bits:
                in_range = n != 0
            elif t == lanes - 1:
                in_range = t < lane + n              # every lane is at most the top one
            else:
                in_range = (t >= lane) & (t < lane + n)
            hit = Cat(cand_ok & (lane + end - 1 == t) for end, cand_ok in zip(ends, oks))
            value = Signal(dw, name=f"lane{t}_value")
            for i in range(ncand):
                with m.If(hit[i]):
                    m.d.comb += value.eq(levels[i][:dw])
            m.d.comb += [fragment.mask[t].eq(in_range),
                         fragment.data[t * dw:(t + 1) * dw].eq(Mux(in_range, value, 0))]
        m.d.comb += [
            self.o.valid.eq(active & ok & (n != 0)),
            fragment.last.eq(n == left),
        ]
        sent = self.o.valid & self.o.ready

        # the position after this cycle: pairs fully sent, and values sent of the next one
        full = Signal(range(ncand + 1))
        full_end = Signal(end_width)
        for i in range(ncand):
            with m.If(oks[i] & (ends[i] <= n)):
                m.d.comb += [full.eq(i + 1), full_end.eq(ends[i])]
        pos = Signal(range(2 * npairs + 1))
        part = Signal(rw)
        left_after = Signal(24)
        with m.If(sent):
            m.d.comb += [pos.eq(k + full), left_after.eq(left - n),
                         part.eq(Mux(full == 0, zeros + n, n - full_end))]
        with m.Else():
            m.d.comb += [pos.eq(k), left_after.eq(left), part.eq(zeros)]
        entered = (pos > npairs) | ((pos == npairs) & (part != 0))
        # the current word is used up: the next one takes its place
        move = nxt_held & (~cur_held | entered
                           | ((pos == npairs) & (left_after != 0) & ~cur_flag))
        m.d.comb += self.i.ready.eq(active & ok & (words_left != 0) & (~nxt_held | move))
        m.d.comb += self.job.ready.eq(~active)

        with m.If(sent):
            m.d.sync += left.eq(left_after)
            if lane_bits:
                m.d.sync += lane.eq(lane + n)       # wraps at the end of the word
        with m.If(move):
            m.d.sync += [cur.eq(nxt), cur_held.eq(1), nxt_held.eq(0)]
            with m.If(cur_held & entered):
                m.d.sync += [k.eq(pos - npairs), zeros.eq(part)]
            with m.Else():
                m.d.sync += [k.eq(0), zeros.eq(0)]
        with m.Else():
            m.d.sync += [k.eq(pos), zeros.eq(part)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [nxt.eq(self.i.payload), nxt_held.eq(1), words_left.eq(words_left - 1)]

        def fail(code):
            m.d.sync += [self.error.eq(code), active.eq(0)]

        # checks of the head; the first failing one names the error
        with m.If(active & ok):
            with m.If(cur_held & spare(cur)):
                fail(RLCError.SPARE_BITS)
            with m.Elif(cur_held & (left != 0) & (k != npairs) & (zeros == 0)
                        & (head_run >= left)):
                fail(RLCError.OVERSHOOT)                      # run + 1 > left
            with m.Elif(cur_held & (left != 0) & (k != npairs) & (zeros == 0)
                        & ~level_ok(head_level)):
                fail(RLCError.LEVEL_RANGE)
            with m.Elif(cur_held & (left == 0)):
                # all values sent: the rest of this word is padding, and it is the last word
                with m.If(~rest_zero):
                    fail(RLCError.PADDING)
                with m.Elif(~cur_flag):
                    fail(RLCError.MISSING_LAST)
                with m.Elif(nxt_held | (words_left != 0)):
                    fail(RLCError.WORDS_AFTER_LAST)
                with m.Else():
                    m.d.sync += active.eq(0)
            with m.Elif(cur_held & (k == npairs)):
                # a word used up with values still expected
                with m.If(cur_flag):
                    fail(RLCError.EARLY_LAST)
                with m.Elif(~nxt_held & (words_left == 0)):
                    fail(RLCError.MISSING_LAST)
            with m.Elif(~cur_held & ~nxt_held & (words_left == 0)):
                fail(RLCError.MISSING_LAST)                   # a job of zero words

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(1), cur_held.eq(0), nxt_held.eq(0), k.eq(0), zeros.eq(0),
                         left.eq(self.job.payload.count), words_left.eq(self.job.payload.words),
                         lane.eq(self.job.payload.lane), self.error.eq(RLCError.NONE)]
        return m
