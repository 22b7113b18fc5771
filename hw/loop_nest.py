"""Loop-nest address and tag generator: the sequencing core of every buffer controller."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["NEST_LEVELS", "ADDR_WIDTH", "COUNT_WIDTH", "NestDescriptor", "NestPoint", "LoopNest"]

#: Number of nested loops a descriptor describes (level 0 is innermost).
NEST_LEVELS = 5
#: Width of element addresses and address strides.
ADDR_WIDTH = 24
#: Width of each loop count.
COUNT_WIDTH = 16


def NestDescriptor(id_width):
    """Layout of a loop nest: a starting point and, per level, a count and three strides.

    The points are, with level 0 innermost::

        for i4 < count4: ... for i0 < count0:
            addr = base + sum(i_k * addr_step_k)     (modulo 2**ADDR_WIDTH)
            row  = row0 + sum(i_k * row_step_k)      (modulo 2**id_width)
            col  = col0 + sum(i_k * col_step_k)      (modulo 2**id_width)

    A zero count anywhere gives no points. Strides are two's complement.
    """
    level = data.StructLayout({
        "count": COUNT_WIDTH,
        "addr_step": ADDR_WIDTH,
        "row_step": id_width,
        "col_step": id_width,
    })
    return data.StructLayout({
        "base": ADDR_WIDTH,
        "row": id_width,
        "col": id_width,
        "levels": data.ArrayLayout(level, NEST_LEVELS),
    })


def NestPoint(id_width):
    """Layout of one generated point: ``addr``, ``row`` and ``col`` tags and ``last``."""
    return data.StructLayout({"addr": ADDR_WIDTH, "row": id_width, "col": id_width, "last": 1})


class LoopNest(wiring.Component):
    """Walks a :func:`NestDescriptor` and emits its points in order.

    Latency and back-pressure
    -------------------------
    Accepts a descriptor when idle; the first point is valid on the next cycle, and then one
    point per cycle while ``o.ready`` is high. The point register holds its value until taken.
    ``last`` marks the final point. An empty nest produces nothing and returns to idle after one
    cycle. No multiplier: each level keeps its running start values and adds its strides.

    Attributes
    ----------
    desc : In(stream.Signature(NestDescriptor(id_width)))
    o : Out(stream.Signature(NestPoint(id_width)))
    busy : Out(1)
        A nest is being walked (or its last point not yet taken).
    """

    def __init__(self, *, id_width):
        if not isinstance(id_width, int) or id_width < 1:
            raise TypeError(f"ID width must be a positive integer, not {id_width!r}")
        self._id_width = id_width
        super().__init__({
            "desc": In(stream.Signature(NestDescriptor(id_width))),
            "o": Out(stream.Signature(NestPoint(id_width))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        idw = self._id_width
        levels = range(NEST_LEVELS)
        desc = Signal(NestDescriptor(idw))
        index = [Signal(COUNT_WIDTH, name=f"i{k}") for k in levels]
        # running values of the current point contributed by levels >= k
        addr = [Signal(ADDR_WIDTH, name=f"addr{k}") for k in levels]
        row = [Signal(idw, name=f"row{k}") for k in levels]
        col = [Signal(idw, name=f"col{k}") for k in levels]
        active = Signal()      # a point is loaded in the output register or being generated

        lv = desc.levels
        last_index = [index[k] == lv[k].count - 1 for k in levels]
        is_last = Signal()
        m.d.comb += is_last.eq(Cat(last_index).all())

        m.d.comb += [
            self.desc.ready.eq(~active),
            self.o.payload.addr.eq(addr[0]),
            self.o.payload.row.eq(row[0]),
            self.o.payload.col.eq(col[0]),
            self.o.payload.last.eq(is_last),
            self.o.valid.eq(active),
            self.busy.eq(active),
        ]

        with m.If(self.desc.valid & self.desc.ready):
            d = self.desc.payload
            empty = Cat(d.levels[k].count == 0 for k in levels).any()
            m.d.sync += [desc.eq(d), active.eq(~empty)]
            for k in levels:
                m.d.sync += [index[k].eq(0), addr[k].eq(d.base), row[k].eq(d.row),
                             col[k].eq(d.col)]

        with m.If(self.o.valid & self.o.ready):
            with m.If(is_last):
                m.d.sync += active.eq(0)
            # advance the lowest level that has not reached its end; reset the ones below it
            for k in levels:
                cond = Cat(last_index[:k]).all() if k else C(1)
                lower_done = cond & ~last_index[k]
                with m.If(lower_done):
                    new_addr = (addr[k] + lv[k].addr_step)[:ADDR_WIDTH]
                    new_row = (row[k] + lv[k].row_step)[:idw]
                    new_col = (col[k] + lv[k].col_step)[:idw]
                    m.d.sync += index[k].eq(index[k] + 1)
                    for j in range(k + 1):
                        m.d.sync += [addr[j].eq(new_addr), row[j].eq(new_row),
                                     col[j].eq(new_col)]
                    for j in range(k):
                        m.d.sync += index[j].eq(0)
        return m
