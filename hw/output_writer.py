"""Output path: psums from the global output network, requantised or raw, into the buffer."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from ..config import require_config
from .tree import shift_add_product
from .gather import SourcedLayout
from .glb import WriteClient
from .loop_nest import ADDR_WIDTH
from .pe import PsumGroup

__all__ = ["OutputDescriptor", "OutputWriter"]


def OutputDescriptor(config):
    """Layout of an output-path job.

    ``count`` transfers (groups of ``g = config.psum_group`` psums) are taken from the output
    network. Value ``i`` of the ``n``-th group from source PE ``(r, c)`` goes to element
    ``base + r*row_step + c*col_step + n*g + i``; ``base``, ``row_step`` and ``col_step`` must be
    multiples of ``g`` (a group is then one aligned buffer write). With ``final`` set, the values
    are requantised (rounding shift by ``shift``, saturation to ``data_width``, ReLU if
    ``relu``) and stored as data elements (one lane each); otherwise they are stored raw as psum
    elements (``psum_lanes`` lanes each), to come back later through the psum network.
    """
    return data.StructLayout({
        "count": 24,
        "base": ADDR_WIDTH,
        "row_step": ADDR_WIDTH,
        "col_step": ADDR_WIDTH,
        "shift": bits_for(config.acc_width - 1),
        "relu": 1,
        "final": 1,
    })


class OutputWriter(wiring.Component):
    """Writes output-network values into the global buffer, per source in arrival order.

    Sources are interleaved on the output network in any order; a per-source counter gives each
    value its place. Requantisation follows the numeric contract: ``y = (acc >> shift) +
    bit(shift - 1)`` for ``shift > 0``, saturated to the signed ``data_width`` range, then ReLU.

    Latency and back-pressure
    -------------------------
    Two register stages (address/requantise, write); one group per cycle. ``i.ready`` falls when
    the write stage waits for its bank, so nothing is lost. ``busy`` is high from accepting a
    descriptor until its ``count`` values are written.

    Attributes
    ----------
    desc : In(stream.Signature(OutputDescriptor(config)))
    i : In(stream.Signature(SourcedLayout(rows, cols, PsumGroup(config))))
    glb : Out(WriteClient(config))
    busy : Out(1)
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        super().__init__({
            "desc": In(stream.Signature(OutputDescriptor(config))),
            "i": In(stream.Signature(SourcedLayout(config.rows, config.cols,
                                                   PsumGroup(config)))),
            "glb": Out(WriteClient(config)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        dw, aw = cfg.data_width, cfg.acc_width
        job = Signal(OutputDescriptor(cfg))
        # only the address and count bits the configuration's buffer needs are computed
        ew, cw = cfg.element_addr_width, min(24, cfg.glb_elements.bit_length())
        remaining = Signal(cw)
        active = Signal()
        m.d.comb += self.desc.ready.eq(~active)
        with m.If(self.desc.valid & ~active):
            m.d.sync += [job.eq(self.desc.payload), remaining.eq(self.desc.payload.count[:cw]),
                         active.eq(self.desc.payload.count[:cw] != 0)]

        counts = Array(Signal(cw, name=f"count_{r}_{c}")
                       for r in range(cfg.rows) for c in range(cfg.cols))
        with m.If(self.desc.valid & ~active):
            for cnt in counts:
                m.d.sync += cnt.eq(0)

        # stage 1: address and value
        s1_valid = Signal()
        s1_addr = Signal(ew)
        s1_final = Signal()
        write_stall = Signal()
        src = self.i.payload
        index = Signal(range(cfg.num_pes))
        m.d.comb += index.eq(src.row * cfg.cols + src.col)
        take = Signal()
        m.d.comb += [
            take.eq(self.i.valid & active & (remaining != 0) & ~write_stall),
            self.i.ready.eq(take),
        ]

        # requantisation (combinational on the incoming values)
        g = cfg.psum_group
        lo, hi = -(1 << (dw - 1)), (1 << (dw - 1)) - 1
        shift = job.shift
        stored = Signal(PsumGroup(cfg))
        for i in range(g):
            acc = src.data[i]
            shifted = Signal(signed(aw + 1), name=f"shifted{i}")
            round_bit = Signal(name=f"round_bit{i}")
            m.d.comb += [
                shifted.eq(acc >> shift),
                round_bit.eq(Mux(shift == 0, 0, (acc >> (shift - 1)[:len(shift)])[0])),
            ]
            rounded = Signal(signed(aw + 1), name=f"rounded{i}")
            m.d.comb += rounded.eq(shifted + round_bit)
            saturated = Signal(signed(dw), name=f"saturated{i}")
            with m.If(rounded > hi):
                m.d.comb += saturated.eq(hi)
            with m.Elif(rounded < lo):
                m.d.comb += saturated.eq(lo)
            with m.Else():
                m.d.comb += saturated.eq(rounded)
            final_value = Signal(signed(dw), name=f"final_value{i}")
            m.d.comb += final_value.eq(Mux(job.relu & saturated[-1], 0, saturated))
            m.d.comb += stored[i].eq(Mux(job.final, final_value, acc))

        s1_values = Signal(PsumGroup(cfg))
        with m.If(~write_stall):
            m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += [
                s1_addr.eq(job.base[:ew] + shift_add_product(job.row_step[:ew], src.row)
                           + shift_add_product(job.col_step[:ew], src.col) + counts[index]),
                s1_values.eq(stored),
                s1_final.eq(job.final),
                counts[index].eq(counts[index] + g),
                remaining.eq(remaining - 1),
            ]

        # stage 2: the buffer write (the group replicated to every slot, the mask picks one)
        data_slots = cfg.lanes // g
        psum_slots = cfg.lanes // (cfg.psum_lanes * g)
        data_word = Cat(Cat(s1_values[i][:dw] for i in range(g)) for _ in range(data_slots))
        psum_bits = cfg.psum_lanes * dw

        def extend(value):
            return (Cat(value, value[-1].replicate(psum_bits - aw))
                    if psum_bits > aw else value[:psum_bits])
        psum_word = Cat(Cat(extend(s1_values[i]) for i in range(g)) for _ in range(psum_slots))
        g_bits = exact_log2(g)
        data_bits = exact_log2(cfg.lanes)
        psum_bits_n = exact_log2(cfg.lanes // cfg.psum_lanes)
        mask = Signal(cfg.lanes)
        with m.If(s1_final):
            slot = s1_addr[g_bits:data_bits] if data_bits > g_bits else C(0, 1)
            m.d.comb += mask.eq(((1 << g) - 1) << (slot * g))
            m.d.comb += [self.glb.addr.eq(s1_addr[data_bits:]), self.glb.data.eq(data_word)]
        with m.Else():
            slot = s1_addr[g_bits:psum_bits_n] if psum_bits_n > g_bits else C(0, 1)
            lane_mask = (1 << (cfg.psum_lanes * g)) - 1
            m.d.comb += mask.eq(lane_mask << (slot * cfg.psum_lanes * g))
            m.d.comb += [self.glb.addr.eq(s1_addr[psum_bits_n:]), self.glb.data.eq(psum_word)]
        m.d.comb += [
            self.glb.mask.eq(mask),
            self.glb.req.eq(s1_valid),
            write_stall.eq(s1_valid & ~self.glb.grant),
        ]
        with m.If(active & (remaining == 0) & ~s1_valid):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active)
        return m
