"""Buffer reader: walks a loop nest over the global buffer and feeds a multicast network."""

from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .glb import ReadClient
from .loop_nest import LoopNest, NestDescriptor
from .multicast import TaggedLayout

__all__ = ["BufferReader"]


class BufferReader(wiring.Component):
    """Reads the elements a :func:`~rsaccel.hw.loop_nest.NestDescriptor` names from the global
    buffer and sends each, with the nest's row and column tags, to a multicast network.

    Elements are ``element_lanes`` lanes of ``data_width`` bits (1 for ifmaps,
    ``config.filter_group`` for filters, ``config.psum_lanes * config.psum_group`` for psums); element address ``a`` is slot
    ``a mod k`` of word ``a div k`` with ``k = lanes / element_lanes`` elements per word. Values
    are sign-extended (or truncated) to ``value_width``. With ``group`` an element is that many
    values of equal width (value 0 in the lowest lanes), sent as one transfer of
    ``data.ArrayLayout(signed(value_width), group)``.

    With ``words = k > 1`` an element is ``k`` whole words (``element_lanes = k * lanes``):
    element ``a`` is word ``a`` and the words ``bank_depth``, ``2*bank_depth``, ... above it,
    one in each of ``k`` consecutive banks, read in the same cycle through ``glb`` and
    ``glb_more`` (word 0 in the lowest lanes).

    Latency and back-pressure
    -------------------------
    Up to one element per cycle (one every third cycle with a one-entry FIFO, two every three
    with two entries). A global-buffer read is issued only when the output FIFO
    (``reader_fifo_depth`` entries) is sure to have room for its data, so back-pressure on
    ``o`` or a lost bank arbitration just delays the nest (a wide element is taken only in a
    cycle where all its words are granted); nothing is dropped. ``busy`` stays high until the
    last value left.

    Attributes
    ----------
    desc : In(stream.Signature(NestDescriptor(noc_id_width)))
    glb : Out(ReadClient(config))
    glb_more : Out(ReadClient(config)).array(words - 1)
        Only with ``words > 1``: the element's other words.
    o : Out(stream.Signature(TaggedLayout(noc_id_width, shape)))
        ``shape`` is ``signed(value_width)``, or the group's array layout with ``group``.
    busy : Out(1)
    """

    def __init__(self, config, *, element_lanes, value_width, group=None, words=1):
        require_config(config)
        if not isinstance(words, int) or words < 1:
            raise ValueError(f"Words must be a positive integer, not {words!r}")
        if words > 1 and element_lanes != words * config.lanes:
            raise ValueError(f"An element of {words} words has {words * config.lanes} lanes, "
                             f"not {element_lanes!r}")
        if (not isinstance(element_lanes, int) or element_lanes < 1
                or element_lanes & (element_lanes - 1)
                or (words == 1 and element_lanes > config.lanes)):
            raise ValueError(f"Element lanes must be a power of two up to {config.lanes}, "
                             f"not {element_lanes!r}")
        if group is not None and (not isinstance(group, int) or group < 1
                                  or element_lanes % group):
            raise ValueError(f"Group must be a positive divisor of the element's "
                             f"{element_lanes} lanes, not {group!r}")
        self._config = config
        self._element_lanes = element_lanes
        self._value_width = value_width
        self._group = group
        self._words = words
        if group is None:
            self._shape = signed(value_width)
        else:
            self._shape = data.ArrayLayout(signed(value_width), group)
        super().__init__({
            "desc": In(stream.Signature(NestDescriptor(config.noc_id_width))),
            "glb": Out(ReadClient(config)),
            **({"glb_more": Out(ReadClient(config)).array(words - 1)} if words > 1 else {}),
            "o": Out(stream.Signature(TaggedLayout(config.noc_id_width, self._shape))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        per_word = max(1, cfg.lanes // self._element_lanes)
        slot_bits = exact_log2(per_word)
        elem_bits = self._element_lanes * cfg.data_width

        m.submodules.nest = nest = LoopNest(id_width=cfg.noc_id_width,
                                            addr_width=cfg.element_addr_width,
                                            count_width=cfg.nest_count_width)
        wiring.connect(m, wiring.flipped(self.desc), nest.desc)
        layout = TaggedLayout(cfg.noc_id_width, self._shape)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=layout.size,
                                                         depth=cfg.reader_fifo_depth)

        point = nest.o.payload
        pending = Signal()                       # a read was granted last cycle
        pending_slot = Signal(max(slot_bits, 1))
        pending_row = Signal(cfg.noc_id_width)
        pending_col = Signal(cfg.noc_id_width)
        room = Signal()
        m.d.comb += room.eq(out_fifo.level + pending < out_fifo.depth)
        clients = [self.glb, *(self.glb_more if self._words > 1 else [])]
        granted = Signal()
        m.d.comb += granted.eq(Cat(cl.grant for cl in clients).all())
        for k, cl in enumerate(clients):
            m.d.comb += [cl.addr.eq(point.addr[slot_bits:] + k * cfg.glb_bank_depth),
                         cl.req.eq(nest.o.valid & room)]
        m.d.comb += nest.o.ready.eq(granted)
        m.d.sync += pending.eq(granted)
        with m.If(granted):
            m.d.sync += [pending_slot.eq(point.addr[:slot_bits] if slot_bits else 0),
                         pending_row.eq(point.row), pending_col.eq(point.col)]

        element = Signal(elem_bits)
        if self._words > 1:
            m.d.comb += element.eq(Cat(cl.data for cl in clients))
        else:
            m.d.comb += element.eq(self.glb.data.word_select(pending_slot, elem_bits)
                                   if slot_bits else self.glb.data[:elem_bits])
        packed = Signal(layout)
        m.d.comb += [
            packed.row.eq(pending_row),
            packed.col.eq(pending_col),
            out_fifo.w_data.eq(packed.as_value()),
            out_fifo.w_en.eq(pending),
        ]
        if self._group is None:
            m.d.comb += packed.data.eq(element.as_signed())
        else:
            part_bits = elem_bits // self._group
            for i in range(self._group):
                m.d.comb += packed.data[i].eq(element[i * part_bits:(i + 1) * part_bits]
                                              .as_signed())
        m.d.comb += [
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
            self.busy.eq(nest.busy | pending | out_fifo.r_rdy),
        ]
        return m
