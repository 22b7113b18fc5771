"""Element reader: consecutive global-buffer elements out as a stream of data values."""

from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .element_writer import ElementRange
from .glb import ReadClient

__all__ = ["ElementReader"]


class ElementReader(wiring.Component):
    """Sends the ``count`` data elements from element address ``base`` on ``o``, in order.

    Each buffer word the range touches is read once; its lanes in the range leave one per
    cycle. The caller checks that the range lies inside the buffer.

    Latency and back-pressure
    -------------------------
    One value per cycle after a two-cycle start. A buffer read is issued only when the
    4-entry word FIFO is sure to have room for its data, so back-pressure on ``o`` or a lost
    bank arbitration only delays the job. ``busy`` is high from accepting a job until its last
    value has left.

    Attributes
    ----------
    job : In(stream.Signature(ElementRange()))
    glb : Out(ReadClient(config))
    o : Out(stream.Signature(signed(data_width)))
    busy : Out(1)
    """

    FIFO_DEPTH = 4

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(ElementRange())),
            "glb": Out(ReadClient(config)),
            "o": Out(stream.Signature(signed(config.data_width))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        dw, lanes = cfg.data_width, cfg.lanes
        lane_bits = exact_log2(lanes)
        lb = max(lane_bits, 1)
        entry = data.StructLayout({"word": cfg.stream_width, "first": lb, "last": lb})
        m.submodules.words = words = fifo.SyncFIFO(width=entry.size, depth=self.FIFO_DEPTH)

        active = Signal()
        addr = Signal(24)                  # element address of the next word's first element
        left = Signal(24)                  # elements still to read
        first = addr[:lane_bits] if lane_bits else C(0, 1)
        # elements of the next word in the range: min(lanes - first, left)
        in_word = Signal(range(lanes + 1))
        m.d.comb += in_word.eq(Mux(left < lanes - first, left, lanes - first))

        pending = Signal()                 # a read was granted last cycle
        pending_first = Signal(lb)
        pending_last = Signal(lb)
        room = words.level + pending < self.FIFO_DEPTH
        m.d.comb += [
            self.glb.addr.eq(addr[lane_bits:]),
            self.glb.req.eq(active & room),
            self.job.ready.eq(~self.busy),
        ]
        m.d.sync += pending.eq(self.glb.grant)
        with m.If(self.glb.grant):
            m.d.sync += [pending_first.eq(first), pending_last.eq(first + in_word - 1),
                         addr.eq(addr + in_word), left.eq(left - in_word)]
            with m.If(left == in_word):
                m.d.sync += active.eq(0)
        written = Signal(entry)
        m.d.comb += [
            written.word.eq(self.glb.data), written.first.eq(pending_first),
            written.last.eq(pending_last),
            words.w_data.eq(written.as_value()), words.w_en.eq(self.glb.data_valid),
        ]

        head = Signal(entry)
        offset = Signal(lb)                # lanes of the head word already sent
        lane = Signal(lb)
        m.d.comb += [head.eq(words.r_data), lane.eq(head.first + offset)]
        if lane_bits:
            m.d.comb += self.o.payload.eq(head.word.word_select(lane[:lane_bits], dw))
        else:
            m.d.comb += self.o.payload.eq(head.word[:dw])
        m.d.comb += self.o.valid.eq(words.r_rdy)
        with m.If(self.o.valid & self.o.ready):
            with m.If(lane == head.last):
                m.d.comb += words.r_en.eq(1)
                m.d.sync += offset.eq(0)
            with m.Else():
                m.d.sync += offset.eq(offset + 1)
        m.d.comb += self.busy.eq(active | pending | words.r_rdy)

        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(self.job.payload.count != 0), addr.eq(self.job.payload.base),
                         left.eq(self.job.payload.count)]
        return m
