"""Global output network: round-robin collection of psums from many PEs into one stream."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

__all__ = ["SourcedLayout", "GatherNetwork"]


def SourcedLayout(rows, cols, payload_shape):
    """Payload of a gathered value: the source PE's ``row`` and ``col`` and the ``data``."""
    return data.StructLayout({"row": bits_for(rows - 1), "col": bits_for(cols - 1),
                              "data": payload_shape})


class GatherNetwork(wiring.Component):
    """Collects values from a ``rows x cols`` grid of streams into one, tagged with the source.

    Sources are served round-robin (row-major index order, starting after the last one
    served), so a source that keeps its stream valid is never starved and no source can block
    another: the host or controller sorts the values by source. Values from one source keep
    their order.

    Latency and back-pressure
    -------------------------
    One register stage: a value appears on ``o`` the cycle after it is taken from its source.
    A new value is taken only when the output register is empty or being emptied, so
    back-pressure on ``o`` holds every source; nothing is lost.

    Attributes
    ----------
    i : In(stream.Signature(payload_shape)).array(rows, cols)
    o : Out(stream.Signature(SourcedLayout(rows, cols, payload_shape)))
    """

    def __init__(self, *, rows, cols, payload_shape):
        for name, value in (("Rows", rows), ("Cols", cols)):
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self._rows, self._cols = rows, cols
        super().__init__({
            "i": In(stream.Signature(payload_shape)).array(rows, cols),
            "o": Out(stream.Signature(SourcedLayout(rows, cols, payload_shape))),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols
        n = rows * cols
        sources = [self.i[r][c] for r in range(rows) for c in range(cols)]
        last = Signal(range(n))                 # index served most recently
        can_take = Signal()
        m.d.comb += can_take.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        valid = Cat(s.valid for s in sources)
        # prefer the first valid source after `last`, else the first valid source overall
        after = Signal(n)
        m.d.comb += after.eq(valid & ~((Const(1, n + 1) << (last + 1)) - 1)[:n])
        grant = Signal(range(n))
        found = Signal()
        for idx in reversed(range(n)):
            with m.If(valid[idx]):
                m.d.comb += [grant.eq(idx), found.eq(1)]
        found_after = Signal()
        for idx in reversed(range(n)):
            with m.If(after[idx]):
                m.d.comb += [grant.eq(idx), found_after.eq(1)]

        with m.If(can_take & found):
            m.d.sync += [last.eq(grant), self.o.valid.eq(1)]
            for idx, src in enumerate(sources):
                with m.If(grant == idx):
                    m.d.comb += src.ready.eq(1)
                    m.d.sync += [
                        self.o.payload.row.eq(idx // cols),
                        self.o.payload.col.eq(idx % cols),
                        self.o.payload.data.eq(src.payload),
                    ]
        return m
