"""The PE array: ``rows x cols`` processing elements joined by Eyeriss-style networks."""

import operator

from amaranth import *
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..config import require_config
from .gather import GatherNetwork, SourcedLayout
from .multicast import MulticastNetwork, TaggedLayout
from .pe import (FilterGroup, PECommand, PEDecoded, PEError, ProcessingElement, PsumGroup,
                 decode_pe_command)
from .tree import balanced

__all__ = ["PsumSource", "ArrayTarget", "ArrayConfigWrite", "PEArray"]


class PsumSource(enum.Enum, shape=2):
    """Where a PE takes its ``psum_in`` from (per layer)."""
    #: The psum global input network (bias or psums of an earlier pass).
    GIN = 0
    #: The local link from the PE below in the same column.
    BELOW = 1
    #: Constant zero (nothing is added to the PE's own sums).
    ZERO = 2


class ArrayTarget(enum.Enum, shape=4):
    """Per-layer configuration register written by an :func:`ArrayConfigWrite`."""
    #: ``value[0]``: PE enabled; ``value[1:3]``: :class:`PsumSource`. Addressed by ``row, col``.
    PE_MODE = 0
    FILT_ROW_ID = 1
    FILT_COL_ID = 2
    IFMAP_ROW_ID = 3
    IFMAP_COL_ID = 4
    PSUM_ROW_ID = 5
    PSUM_COL_ID = 6


def ArrayConfigWrite(config):
    """Layout of one configuration-register write: ``target``, ``row``, ``col``, ``value``.

    ``*_ROW_ID`` targets ignore ``col``.
    """
    return data.StructLayout({
        "target": ArrayTarget,
        "row": bits_for(config.rows - 1),
        "col": bits_for(config.cols - 1),
        "value": max(config.noc_id_width, 3),
    })


class PEArray(wiring.Component):
    """Row-stationary PE array with multicast input networks and a gathering output network.

    Three global input networks (:class:`~rsaccel.hw.multicast.MulticastNetwork`) carry filters,
    ifmaps and psums, each with its own per-layer row-bus IDs and PE column IDs, so filter rows
    can be sent along array rows and ifmap rows along diagonals in one transfer. Each PE takes
    ``psum_in`` from the psum network, from the PE below (vertical local link) or from zero
    (:class:`PsumSource`, per PE). A PE's ``psum_out`` goes to the PE above when that PE takes
    psums from below, else to the global output network
    (:class:`~rsaccel.hw.gather.GatherNetwork`), which tags it with the PE's position.
    Commands are broadcast to every enabled PE (a transfer completes once all took it);
    disabled PEs receive nothing and stay idle.

    Latency and back-pressure
    -------------------------
    Input networks add no latency; the output network adds one register stage. Every stream
    honours back-pressure; a multicast value waits until all its destinations took it.

    Attributes
    ----------
    cfg : In(stream.Signature(ArrayConfigWrite(config)))
        Per-layer configuration writes (IDs and PE modes); write them only while idle.
    cmd : In(stream.Signature(PECommand(config)))
        PE command broadcast to every enabled PE. It is decoded once for the whole array and
        taken into a command register when that is empty; the PEs see it the next cycle, and
        the register empties when every enabled PE has taken it (``busy`` until then).
    filt : In(stream.Signature(TaggedLayout(noc_id_width, FilterGroup(config))))
        Groups of ``filter_group`` filter values (:func:`~rsaccel.hw.pe.FilterGroup`).
    ifmap : In(stream.Signature(TaggedLayout(noc_id_width, signed(data_width))))
    psum : In(stream.Signature(TaggedLayout(noc_id_width, PsumGroup(config))))
        Groups of ``psum_group`` psums (:func:`~rsaccel.hw.pe.PsumGroup`).
    out : Out(stream.Signature(SourcedLayout(rows, cols, PsumGroup(config))))
    busy : Out(1)
        Some PE is busy, a value is in the output register or a command is in the command
        register. Registered: it falls one cycle after the last of these ends.
    error : Out(PEError)
        Error code of the first PE (row-major) reporting one, one cycle after that PE's.
    dropped : Out(1)
        Sticky: an input-network value matched no PE (a mapping error). Cleared by a write to
        ``PE_MODE`` of PE (0, 0).
    pe_counters : Out(data.ArrayLayout(PECounters, rows * cols))
        Per-PE counters, row-major.
    totals : Out(PECounters(config))
        The PE counters summed over the array, two cycles behind the PEs' increments
        (cleared with the PEs' CLEAR command by ``clear_totals``); always 0 without
        ``perf_counters``.
    clear_totals : In(1)
        Zero ``totals``.
    settling : Out(1)
        Increments are still on their way into ``totals`` (at most two cycles after the last
        PE event); the core's SYNC waits for it, so counters read after a SYNC are final.
        Always 0 without ``perf_counters``.
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        idw = config.noc_id_width
        from .pe import PECounters
        super().__init__({
            "cfg": In(stream.Signature(ArrayConfigWrite(config))),
            "cmd": In(stream.Signature(PECommand(config))),
            "filt": In(stream.Signature(TaggedLayout(idw, FilterGroup(config)))),
            "ifmap": In(stream.Signature(TaggedLayout(idw, signed(config.data_width)))),
            "psum": In(stream.Signature(TaggedLayout(idw, PsumGroup(config)))),
            "out": Out(stream.Signature(SourcedLayout(config.rows, config.cols,
                                                      PsumGroup(config)))),
            "busy": Out(1),
            "error": Out(PEError),
            "dropped": Out(1),
            "pe_counters": Out(data.ArrayLayout(PECounters(config), config.num_pes)),
            "totals": Out(PECounters(config)),
            "clear_totals": In(1),
            "settling": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        rows, cols, idw = cfg.rows, cfg.cols, cfg.noc_id_width
        m = Module()

        # per-layer configuration registers
        enable = Signal(data.ArrayLayout(data.ArrayLayout(1, cols), rows))
        psum_src = [[Signal(PsumSource, name=f"psum_src_{r}_{c}") for c in range(cols)]
                    for r in range(rows)]
        ids = {}
        for net in ("filt", "ifmap", "psum"):
            ids[net] = (Signal(data.ArrayLayout(idw, rows), name=f"{net}_row_id"),
                        Signal(data.ArrayLayout(data.ArrayLayout(idw, cols), rows),
                               name=f"{net}_col_id"))
        w = self.cfg.payload
        m.d.comb += self.cfg.ready.eq(1)
        targets = {"filt": (ArrayTarget.FILT_ROW_ID, ArrayTarget.FILT_COL_ID),
                   "ifmap": (ArrayTarget.IFMAP_ROW_ID, ArrayTarget.IFMAP_COL_ID),
                   "psum": (ArrayTarget.PSUM_ROW_ID, ArrayTarget.PSUM_COL_ID)}
        dropped_pulse = Signal()
        with m.If(self.cfg.valid):
            for r in range(rows):
                with m.If(w.row == r):
                    for net, (row_target, col_target) in targets.items():
                        with m.If(w.target == row_target):
                            m.d.sync += ids[net][0][r].eq(w.value)
                    for c in range(cols):
                        with m.If(w.col == c):
                            with m.If(w.target == ArrayTarget.PE_MODE):
                                m.d.sync += [enable[r][c].eq(w.value[0]),
                                             psum_src[r][c].eq(w.value[1:3])]
                            for net, (row_target, col_target) in targets.items():
                                with m.If(w.target == col_target):
                                    m.d.sync += ids[net][1][r][c].eq(w.value)
        with m.If(self.cfg.valid & (w.target == ArrayTarget.PE_MODE) & (w.row == 0)
                  & (w.col == 0)):
            m.d.sync += self.dropped.eq(0)
        with m.Elif(dropped_pulse):
            m.d.sync += self.dropped.eq(1)

        # networks
        nets = {}
        for net in ("filt", "ifmap", "psum"):
            shape = {"psum": PsumGroup(cfg), "filt": FilterGroup(cfg)}.get(
                net, signed(cfg.data_width))
            nets[net] = bus = MulticastNetwork(rows=rows, cols=cols, id_width=idw,
                                               payload_shape=shape)
            m.submodules[f"{net}_gin"] = bus
            wiring.connect(m, wiring.flipped(getattr(self, net)), bus.i)
            m.d.comb += [bus.row_id.eq(ids[net][0]), bus.col_id.eq(ids[net][1]),
                         bus.enable.eq(enable)]
        m.d.comb += dropped_pulse.eq(Cat(bus.dropped for bus in nets.values()).any())

        m.submodules.gon = gon = GatherNetwork(rows=rows, cols=cols,
                                               payload_shape=PsumGroup(cfg))
        wiring.connect(m, gon.o, wiring.flipped(self.out))

        # processing elements
        pes = [[ProcessingElement(cfg, predecoded=True) for c in range(cols)]
               for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]

        # command stage: a command is decoded once for every PE (products and checks, see
        # decode_pe_command) and held in a register, from which it is broadcast; a new one is
        # taken only when the register is empty, so no combinational path runs from the PEs
        # back to ``cmd.ready`` nor from the decoder's multipliers into the PEs
        held = Signal(PECommand(cfg))
        held_decoded = Signal(PEDecoded(cfg))
        held_valid = Signal()
        decoded = decode_pe_command(m, cfg, self.cmd.payload)
        m.d.comb += self.cmd.ready.eq(~held_valid)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [held.eq(self.cmd.payload), held_decoded.eq(decoded),
                         held_valid.eq(1)]
        # broadcast with per-PE delivered bits (same rules as the multicast network)
        cmd_outstanding = []
        cmd_delivered = []
        for r in range(rows):
            for c in range(cols):
                pe = pes[r][c]
                delivered = Signal(name=f"cmd_delivered_{r}_{c}")
                m.d.comb += [
                    pe.cmd.payload.eq(held),
                    pe.decoded.eq(held_decoded),
                    pe.cmd.valid.eq(held_valid & enable[r][c] & ~delivered),
                ]
                outstanding = Signal(name=f"cmd_outstanding_{r}_{c}")
                m.d.comb += outstanding.eq(pe.cmd.valid & ~pe.cmd.ready)
                cmd_outstanding.append(outstanding)
                cmd_delivered.append((delivered, pe))
        all_taken = Signal()
        m.d.comb += all_taken.eq(~Cat(cmd_outstanding).any())
        with m.If(held_valid & all_taken):
            m.d.sync += held_valid.eq(0)
        for delivered, pe in cmd_delivered:
            with m.If(held_valid & all_taken):
                m.d.sync += delivered.eq(0)
            with m.Elif(pe.cmd.valid & pe.cmd.ready):
                m.d.sync += delivered.eq(1)

        for r in range(rows):
            for c in range(cols):
                pe = pes[r][c]
                wiring.connect(m, nets["filt"].o[r][c], pe.filt)
                wiring.connect(m, nets["ifmap"].o[r][c], pe.ifmap)
                gin = nets["psum"].o[r][c]
                below = pes[r + 1][c].psum_out if r + 1 < rows else None
                below_valid = below.valid if below is not None else C(0)
                below_payload = below.payload if below is not None else C(0)
                with m.Switch(psum_src[r][c]):
                    with m.Case(PsumSource.GIN):
                        m.d.comb += [pe.psum_in.valid.eq(gin.valid),
                                     pe.psum_in.payload.eq(gin.payload),
                                     gin.ready.eq(pe.psum_in.ready)]
                    with m.Case(PsumSource.BELOW):
                        m.d.comb += [pe.psum_in.valid.eq(below_valid),
                                     pe.psum_in.payload.eq(below_payload)]
                        if below is not None:
                            m.d.comb += below.ready.eq(pe.psum_in.ready)
                    with m.Default():
                        m.d.comb += [pe.psum_in.valid.eq(1), pe.psum_in.payload.eq(0)]
                # psum_out: up to the PE above if it takes psums from below, else to the GON
                goes_up = (psum_src[r - 1][c] == PsumSource.BELOW) if r > 0 else C(0)
                gon_in = gon.i[r][c]
                m.d.comb += [gon_in.valid.eq(pe.psum_out.valid & ~goes_up),
                             gon_in.payload.eq(pe.psum_out.payload)]
                with m.If(~goes_up):
                    m.d.comb += pe.psum_out.ready.eq(gon_in.ready)

        # status
        flat = [pes[r][c] for r in range(rows) for c in range(cols)]
        # ``busy`` is registered: the OR over every PE would otherwise run across the array
        # into the core's decoder in one cycle. It falls a cycle after the array went idle,
        # and never early: the array becomes busy only by taking a command into the command
        # register, which is part of ``busy`` directly
        busy_seen = Signal()
        m.d.sync += busy_seen.eq(Cat(pe.busy for pe in flat).any() | self.out.valid
                                 | held_valid)
        m.d.comb += self.busy.eq(busy_seen | held_valid)
        # the lowest-indexed PE's error, chosen by a balanced tree of pairwise choices, in a
        # register (errors reach the core a cycle after the PE flags them)
        m.d.sync += self.error.eq(balanced([pe.error for pe in flat],
                                           lambda a, b: Mux(a != PEError.NONE, a, b)))
        for idx, pe in enumerate(flat):
            m.d.comb += self.pe_counters[idx].eq(pe.counters)
        from .pe import PE_COUNTER_NAMES
        # totals: each PE's increments are registered, summed by a balanced adder tree into a
        # second register, then accumulated, so the totals trail the PEs by two cycles (the
        # increments of the issue logic do not have to cross the array and the tree in one)
        pending = []
        for name in PE_COUNTER_NAMES if cfg.perf_counters else ():
            total = self.totals[name]
            seen = []
            for idx, pe in enumerate(flat):
                event = Signal.like(pe.events[name], name=f"event_{name}_{idx}")
                m.d.sync += event.eq(pe.events[name])
                seen.append(event)
            tree = balanced(seen, operator.add)
            summed = Signal(len(tree), name=f"summed_{name}")
            m.d.sync += summed.eq(tree)
            with m.If(self.clear_totals):
                m.d.sync += [total.eq(0), summed.eq(0)] + [event.eq(0) for event in seen]
            with m.Else():
                m.d.sync += total.eq(total + summed)
            pending += [Cat(seen).any(), summed.any()]
        m.d.comb += self.settling.eq(Cat(pending).any())
        return m


