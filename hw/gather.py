"""Global output network: round-robin collection of psums from many PEs into one stream."""

import operator

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from .tree import balanced

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
    The arbiter and the output multiplexer are parallel (a carry chain and OR trees), so the
    logic depth grows with log2 of the number of sources, not linearly.
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
        can_take = Signal()
        m.d.comb += can_take.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # The arbiter is parallel (carry-chain and OR-tree depth, not a chain over the
        # sources): `above` marks the sources after the one served last (after reset: after
        # source 0). The lowest valid source of `valid & above`, else of `valid`, is the
        # lowest set bit of the 2n-bit vector Cat(valid & above, valid), folded to n bits.
        valid = Signal(n)
        m.d.comb += valid.eq(Cat(s.valid for s in sources))
        above = Signal(n, init=((1 << n) - 1) & ~1)
        both = Signal(2 * n)
        m.d.comb += both.eq(Cat(valid & above, valid))
        lowest = Signal(2 * n)
        m.d.comb += lowest.eq(both & (~both + 1))
        grant = Signal(n)                       # one-hot; zero when no source is valid
        m.d.comb += grant.eq(lowest[:n] | lowest[n:])
        take = Signal()
        m.d.comb += take.eq(can_take & valid.any())

        with m.If(take):
            m.d.sync += [
                above.eq(~((grant << 1) - 1)),  # sources strictly after the granted one
                self.o.valid.eq(1),
                self.o.payload.row.eq(_select(grant, [C(idx // cols) for idx in range(n)])),
                self.o.payload.col.eq(_select(grant, [C(idx % cols) for idx in range(n)])),
                self.o.payload.data.eq(_select(grant, [s.payload for s in sources])),
            ]
        for idx, src in enumerate(sources):
            m.d.comb += src.ready.eq(take & grant[idx])
        return m


def _select(one_hot, values):
    """The value whose bit is set in ``one_hot`` (zero if none): an AND-OR mux, reduced as a
    balanced tree so its depth grows with log2 of the number of values."""
    width = max(Value.cast(v).shape().width for v in values)
    terms = [Value.cast(v).as_unsigned() & one_hot[idx].replicate(width)
             for idx, v in enumerate(values)]
    return balanced(terms, operator.or_)
