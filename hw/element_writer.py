"""Element writer: a stream of data values into consecutive global-buffer elements."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .glb import WriteClient

__all__ = ["ElementRange", "ElementWriter"]


def ElementRange():
    """``count`` consecutive data elements from element address ``base``."""
    return data.StructLayout({"base": 24, "count": 24})


class ElementWriter(wiring.Component):
    """Stores ``count`` values from ``i`` at data elements ``base``, ``base + 1``, ...

    Element ``a`` is lane ``a mod lanes`` of buffer word ``a div lanes``. Values are packed into
    words and each word is written once, with a lane mask, when its last lane is filled or the
    job's last value arrives; lanes outside the range keep their contents. The caller checks
    that the range lies inside the buffer.

    Latency and back-pressure
    -------------------------
    One value per cycle. A finished word waits in a write register for its bank; ``i`` is taken
    only while that register is free or being written, so nothing is lost. ``busy`` is high
    from accepting a job until its last word is written.

    Attributes
    ----------
    job : In(stream.Signature(ElementRange()))
    i : In(stream.Signature(signed(data_width)))
    glb : Out(WriteClient(config))
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(ElementRange())),
            "i": In(stream.Signature(signed(config.data_width))),
            "glb": Out(WriteClient(config)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        dw, lanes = cfg.data_width, cfg.lanes
        lane_bits = exact_log2(lanes)

        active = Signal()
        addr = Signal(24)                 # element address of the next value
        left = Signal(24)
        acc = Signal(cfg.stream_width)
        mask = Signal(lanes)
        pending = Signal()                # a finished word waits for its bank
        m.d.comb += [
            self.busy.eq(active | pending),
            self.job.ready.eq(~self.busy),
            self.glb.req.eq(pending),
            self.i.ready.eq(active & (left != 0) & (~pending | self.glb.grant)),
        ]

        lane = addr[:lane_bits] if lane_bits else C(0)
        placed = Signal(cfg.stream_width)
        placed_mask = Signal(lanes)
        with m.Switch(lane):
            for k in range(lanes):
                with m.Case(k):
                    m.d.comb += [
                        placed.eq(acc | (self.i.payload.as_unsigned() << (k * dw))),
                        placed_mask.eq(mask | (1 << k)),
                    ]
        with m.If(self.glb.grant):
            m.d.sync += pending.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
            with m.If((lane == lanes - 1) | (left == 1)):
                m.d.sync += [
                    self.glb.addr.eq(addr[lane_bits:]), self.glb.data.eq(placed),
                    self.glb.mask.eq(placed_mask), pending.eq(1), acc.eq(0), mask.eq(0),
                ]
            with m.Else():
                m.d.sync += [acc.eq(placed), mask.eq(placed_mask)]
            with m.If(left == 1):
                m.d.sync += active.eq(0)
        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(self.job.payload.count != 0), addr.eq(self.job.payload.base),
                         left.eq(self.job.payload.count), acc.eq(0), mask.eq(0)]
        return m
