"""Element reader: consecutive global-buffer elements out as buffer-word fragments."""

from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .element_writer import ElementRange
from .glb import ReadClient, WordFragment

__all__ = ["ElementReader"]


class ElementReader(wiring.Component):
    """Sends the ``count`` data elements from element address ``base`` on ``o``, in order.

    Each buffer word the range touches is read once and leaves as one
    :func:`~rsaccel.hw.glb.WordFragment`: ``data`` is the word with the lanes outside the range
    zeroed, ``mask`` the lanes in the range (a contiguous run: from lane ``base mod lanes`` in
    the first word, from lane 0 in the others, up to the range's end), and ``last`` is set on
    the job's final fragment. A job of zero elements sends nothing. The caller checks that the
    range lies inside the buffer.

    Latency and back-pressure
    -------------------------
    One fragment (one buffer word) per cycle after a three-cycle start: the job is taken in
    cycle 0, the first read is requested in cycle 1 and its fragment is valid on ``o`` from
    cycle 3. A buffer read is issued only when the 4-entry fragment FIFO is sure to have room
    for its data, so back-pressure on ``o`` or a lost bank arbitration only delays the job.
    ``busy`` is high from accepting a job until its last fragment has left.

    Attributes
    ----------
    job : In(stream.Signature(ElementRange()))
    glb : Out(ReadClient(config))
    o : Out(stream.Signature(WordFragment(config)))
    busy : Out(1)
    """

    FIFO_DEPTH = 4

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(ElementRange())),
            "glb": Out(ReadClient(config)),
            "o": Out(stream.Signature(WordFragment(config))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        dw, lanes = cfg.data_width, cfg.lanes
        lane_bits = exact_log2(lanes)
        layout = WordFragment(cfg)
        m.submodules.words = words = fifo.SyncFIFO(width=layout.size, depth=self.FIFO_DEPTH)

        active = Signal()
        addr = Signal(24)                  # element address of the next word's first element
        left = Signal(24)                  # elements still to read
        first = addr[:lane_bits] if lane_bits else C(0, 1)
        # elements of the next word in the range: min(lanes - first, left)
        in_word = Signal(range(lanes + 1))
        end = Signal(range(2 * lanes + 1))  # one past the next word's last lane in the range
        m.d.comb += [in_word.eq(Mux(left < lanes - first, left, lanes - first)),
                     end.eq(first + in_word)]
        mask = Signal(lanes)
        # lane k in the range: first <= k < end (the first test is always true for the top lane)
        m.d.comb += mask.eq(Cat(((first <= k) if k < lanes - 1 else C(1, 1)) & (k < end)
                                for k in range(lanes)))

        pending = Signal()                 # a read was granted last cycle
        pending_mask = Signal(lanes)
        pending_last = Signal()
        room = words.level + pending < self.FIFO_DEPTH
        m.d.comb += [
            self.glb.addr.eq(addr[lane_bits:]),
            self.glb.req.eq(active & room),
            self.job.ready.eq(~self.busy),
        ]
        m.d.sync += pending.eq(self.glb.grant)
        with m.If(self.glb.grant):
            m.d.sync += [pending_mask.eq(mask), pending_last.eq(left == in_word),
                         addr.eq(addr + in_word), left.eq(left - in_word)]
            with m.If(left == in_word):
                m.d.sync += active.eq(0)
        written = Signal(layout)
        m.d.comb += [
            # lanes outside the range zeroed on the way into the FIFO
            written.data.eq(self.glb.data & Cat(pending_mask[k].replicate(dw)
                                                for k in range(lanes))),
            written.mask.eq(pending_mask),
            written.last.eq(pending_last),
            words.w_data.eq(written.as_value()), words.w_en.eq(self.glb.data_valid),
        ]

        m.d.comb += [
            self.o.payload.eq(words.r_data),
            self.o.valid.eq(words.r_rdy),
            words.r_en.eq(self.o.ready),
            self.busy.eq(active | pending | words.r_rdy),
        ]

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(self.job.payload.count != 0), addr.eq(self.job.payload.base),
                         left.eq(self.job.payload.count)]
        return m
