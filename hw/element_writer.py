"""Element writer: buffer-word fragments into consecutive global-buffer elements."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .glb import WordFragment, WriteClient

__all__ = ["ElementRange", "ElementWriter"]


def ElementRange():
    """``count`` consecutive data elements from element address ``base``."""
    return data.StructLayout({"base": 24, "count": 24})


class ElementWriter(wiring.Component):
    """Stores the ``count`` values of a job at data elements ``base``, ``base + 1``, ...

    Element ``a`` is lane ``a mod lanes`` of buffer word ``a div lanes``. The values arrive as
    :func:`~rsaccel.hw.glb.WordFragment` s already in their lanes (as
    :class:`~rsaccel.hw.rlc_decoder.RLCDecoder` sends them): fragments of one word are merged,
    and each word is written once, with a lane mask, when a fragment reaches its top lane or
    the job's last fragment arrives; lanes outside the range keep their contents. The caller
    checks that the range lies inside the buffer and that the fragments follow each other
    from lane ``base mod lanes``.

    Latency and back-pressure
    -------------------------
    One fragment (up to a whole buffer word) per cycle. A finished word waits in a write
    register for its bank; ``i`` is taken only while that register is free or being written,
    so nothing is lost. ``busy`` is high from accepting a job until its last word is written.

    Attributes
    ----------
    job : In(stream.Signature(ElementRange()))
    i : In(stream.Signature(WordFragment(config)))
    glb : Out(WriteClient(config))
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "job": In(stream.Signature(ElementRange())),
            "i": In(stream.Signature(WordFragment(config))),
            "glb": Out(WriteClient(config)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        lanes = cfg.lanes
        lane_bits = exact_log2(lanes)

        active = Signal()
        word_addr = Signal(24 - lane_bits)   # buffer word of the next fragment
        acc = Signal(cfg.stream_width)
        mask = Signal(lanes)
        pending = Signal()                   # a finished word waits for its bank
        m.d.comb += [
            self.busy.eq(active | pending),
            self.job.ready.eq(~self.busy),
            self.glb.req.eq(pending),
            self.i.ready.eq(active & (~pending | self.glb.grant)),
        ]

        fragment = self.i.payload
        placed = acc | fragment.data
        placed_mask = mask | fragment.mask
        with m.If(self.glb.grant):
            m.d.sync += pending.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(fragment.mask[lanes - 1] | fragment.last):
                m.d.sync += [
                    self.glb.addr.eq(word_addr), self.glb.data.eq(placed),
                    self.glb.mask.eq(placed_mask), pending.eq(1), acc.eq(0), mask.eq(0),
                    word_addr.eq(word_addr + 1),
                ]
            with m.Else():
                m.d.sync += [acc.eq(placed), mask.eq(placed_mask)]
            with m.If(fragment.last):
                m.d.sync += active.eq(0)
        with m.If(self.job.valid & self.job.ready):
            m.d.sync += [active.eq(self.job.payload.count != 0),
                         word_addr.eq(self.job.payload.base[lane_bits:]), acc.eq(0), mask.eq(0)]
        return m
