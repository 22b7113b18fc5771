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
    """Layout of a loop nest: a starting point and, per level, a count and three jumps.

    The points are, with level 0 innermost::

        for i4 < count4: ... for i0 < count0:
            addr = base + sum(i_k * addr_step_k)     (modulo 2**ADDR_WIDTH)
            row  = row0 + sum(i_k * row_step_k)      (modulo 2**id_width)
            col  = col0 + sum(i_k * col_step_k)      (modulo 2**id_width)

    On the stream each level carries, instead of its stride, its *jump*: what the point adds
    when level ``k`` advances and every level below it starts over::

        addr_jump_k = addr_step_k - sum_{j<k} (count_j - 1) * addr_step_j

    (likewise ``row_jump`` and ``col_jump``; see :meth:`rsaccel.sim.nest_model.Nest.as_fields`),
    so the generator needs one adder per tag and no per-level running values. A zero count
    anywhere gives no points. Jumps are two's complement. This is the layout on the command
    stream; a :class:`LoopNest` may keep fewer address and count bits inside.
    """
    level = data.StructLayout({
        "count": COUNT_WIDTH,
        "addr_jump": ADDR_WIDTH,
        "row_jump": id_width,
        "col_jump": id_width,
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
    cycle. No multiplier and one adder per tag: each level keeps a down-counter of the points
    left in it, and a point adds the jump of the lowest level that has not reached its end.

    Parameters
    ----------
    id_width : int
        Width of the row and column tags.
    addr_width : int
        Address bits kept and computed (1 to :data:`ADDR_WIDTH`): addresses are generated modulo
        ``2**addr_width`` and zero-extended on ``o``, which is exact for every nest whose points
        lie below ``2**addr_width`` (two's complement strides wrap correctly).
    count_width : int
        Count bits kept (1 to :data:`COUNT_WIDTH`): a descriptor count is taken modulo
        ``2**count_width``, so its issuer must keep counts below that (the layer compiler does,
        from the configuration's :attr:`~rsaccel.config.AccelConfig.nest_count_width`); with a
        larger count in a level below others, the jumps of the levels above (computed from the
        full count) no longer match and the points are not the nest's.

    Attributes
    ----------
    desc : In(stream.Signature(NestDescriptor(id_width)))
    o : Out(stream.Signature(NestPoint(id_width)))
    busy : Out(1)
        A nest is being walked (or its last point not yet taken).
    """

    def __init__(self, *, id_width, addr_width=ADDR_WIDTH, count_width=COUNT_WIDTH):
        if not isinstance(id_width, int) or id_width < 1:
            raise TypeError(f"ID width must be a positive integer, not {id_width!r}")
        for name, value, limit in (("Address width", addr_width, ADDR_WIDTH),
                                   ("Count width", count_width, COUNT_WIDTH)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 1 <= value <= limit:
                raise ValueError(f"{name} must be between 1 and {limit}, not {value}")
        self._id_width = id_width
        self._addr_width = addr_width
        self._count_width = count_width
        super().__init__({
            "desc": In(stream.Signature(NestDescriptor(id_width))),
            "o": Out(stream.Signature(NestPoint(id_width))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        idw, aw, cw = self._id_width, self._addr_width, self._count_width
        levels = range(NEST_LEVELS)
        # the descriptor as kept: only the address and count bits this nest computes with
        last_index = Signal(data.ArrayLayout(cw, NEST_LEVELS))      # count - 1 per level
        jumps = Signal(data.ArrayLayout(data.StructLayout({
            "addr": aw, "row": idw, "col": idw}), NEST_LEVELS))
        left = [Signal(cw, name=f"left{k}") for k in levels]       # iterations left in level k
        addr = Signal(aw)
        row = Signal(idw)
        col = Signal(idw)
        active = Signal()      # a point is loaded in the output register or being generated

        at_end = Signal(NEST_LEVELS)
        m.d.comb += at_end.eq(Cat(left[k] == 0 for k in levels))
        is_last = Signal()
        m.d.comb += is_last.eq(at_end.all())

        m.d.comb += [
            self.desc.ready.eq(~active),
            self.o.payload.addr.eq(addr),
            self.o.payload.row.eq(row),
            self.o.payload.col.eq(col),
            self.o.payload.last.eq(is_last),
            self.o.valid.eq(active),
            self.busy.eq(active),
        ]

        with m.If(self.desc.valid & self.desc.ready):
            d = self.desc.payload
            empty = Cat(d.levels[k].count[:cw] == 0 for k in levels).any()
            m.d.sync += [active.eq(~empty), addr.eq(d.base[:aw]), row.eq(d.row),
                         col.eq(d.col)]
            for k in levels:
                count_m1 = (d.levels[k].count[:cw] - 1)[:cw]
                m.d.sync += [last_index[k].eq(count_m1), left[k].eq(count_m1),
                             jumps[k].addr.eq(d.levels[k].addr_jump[:aw]),
                             jumps[k].row.eq(d.levels[k].row_jump),
                             jumps[k].col.eq(d.levels[k].col_jump)]

        # the lowest level not at its end advances; the levels below it start over
        jump = Signal.like(jumps[0])
        for k in reversed(levels):
            with m.If(~at_end[k]):
                m.d.comb += jump.eq(jumps[k])
        with m.If(self.o.valid & self.o.ready):
            with m.If(is_last):
                m.d.sync += active.eq(0)
            m.d.sync += [addr.eq(addr + jump.addr), row.eq(row + jump.row),
                         col.eq(col + jump.col)]
            for k in levels:
                below_done = at_end[:k].all() if k else C(1)
                with m.If(below_done & ~at_end[k]):
                    m.d.sync += left[k].eq(left[k] - 1)
                    for j in range(k):
                        m.d.sync += left[j].eq(last_index[j])
        return m
