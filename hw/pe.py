"""One Eyeriss-style processing element: the row-stationary 1-D convolution primitive."""

from amaranth import *
from amaranth.lib import data, enum, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..config import require_config
from .tree import shift_add_product

__all__ = ["PEOp", "PEError", "PECommand", "PEDecoded", "decode_pe_command", "PECounters",
           "PEEvents", "PsumGroup", "FilterGroup", "ProcessingElement"]


def PsumGroup(config):
    """Shape of one psum transfer: ``config.psum_group`` psums (element 0 first)."""
    return data.ArrayLayout(signed(config.acc_width), config.psum_group)


def FilterGroup(config):
    """Shape of one filter transfer: ``config.filter_group`` consecutive filter values
    (element 0 first), or one plain value when the group is 1."""
    if config.filter_group == 1:
        return signed(config.data_width)
    return data.ArrayLayout(signed(config.data_width), config.filter_group)


class PEOp(enum.Enum, shape=2):
    """Operation carried by a :class:`PECommand`."""
    #: Load ``p * q * S`` filter values from the ``filt`` stream into the filter spad.
    LOAD_FILTERS = 0
    #: Convolve ``rows`` ifmap rows with the loaded filters.
    RUN = 1
    #: Zero every performance counter and the error code.
    CLEAR = 2
    #: ``LOAD_FILTERS`` and ``RUN`` in one command: the filters load while the ifmap ring and
    #: the psum input FIFO fill, and the first MAC issues once the last filter value is
    #: written (so the ifmap stream's start overlaps the load). Not with zero skipping
    #: (``BAD_OP`` there).
    LOAD_RUN = 3


class PEError(enum.Enum, shape=3):
    """Sticky error code of a PE (cleared by :attr:`PEOp.CLEAR`)."""
    NONE = 0
    #: Unknown operation.
    BAD_OP = 1
    #: ``S``, ``p``, ``q`` or ``rows`` is zero.
    ZERO_FIELD = 2
    #: ``p*q*S``, ``q*S`` or ``p`` exceeds the filter, ifmap or psum spad.
    SPAD_OVERFLOW = 3
    #: Stride outside ``[1, max_stride]``.
    BAD_STRIDE = 4
    #: Output row width outside ``[1, max_ofmap_width]``.
    BAD_WIDTH = 5
    #: RUN's ``p*q*S`` differs from the last LOAD_FILTERS (stale filters would be read).
    FILTER_MISMATCH = 6
    #: Window smaller than ``S`` or ``window*q`` exceeds the ifmap spad.
    BAD_WINDOW = 7


#: Bits of a PE command's ``rows`` field: a RUN convolves at most 255 rows (images of the
#: pass's batch); the mapper splits larger batches over passes (a wider field cost two 16-bit
#: down-counters and their compares in every PE).
PE_ROWS_WIDTH = 8
MAX_PE_ROWS = (1 << PE_ROWS_WIDTH) - 1


def PECommand(config):
    """Layout of a PE command for ``config``.

    Fields: ``op`` (:class:`PEOp`), ``s`` (filter width S), ``p`` (filters interleaved),
    ``q`` (channels interleaved), ``stride`` (U), ``width`` (outputs per row F), ``rows`` (rows to
    convolve, RUN only), ``psum_in_en`` (add the ``psum_in`` stream; otherwise add nothing),
    ``window`` (ifmap positions the ifmap spad holds as a ring, ``S <= window`` and
    ``window*q <= ifmap_spad_depth``; RUN only; larger windows let the ifmap stream run further
    ahead of the MACs, ``ifmap_spad_depth // q`` is best).
    """
    return data.StructLayout({
        "op": PEOp,
        "s": bits_for(config.ifmap_spad_depth),
        "p": bits_for(config.psum_spad_depth),
        "q": bits_for(config.ifmap_spad_depth),
        "stride": bits_for(config.max_stride),
        "width": bits_for(config.max_ofmap_width),
        "rows": PE_ROWS_WIDTH,
        "psum_in_en": 1,
        "window": bits_for(config.ifmap_spad_depth),
    })


def PEDecoded(config):
    """Layout of what a PE derives from a :func:`PECommand` (see :func:`decode_pe_command`)."""
    return data.StructLayout({
        "qs": bits_for(config.ifmap_spad_depth ** 2),
        "pqs": range(config.psum_spad_depth * config.ifmap_spad_depth ** 2 + 1),
        "ring": bits_for(config.ifmap_spad_depth ** 2),
        "row_len": bits_for(config.max_ifmap_row_width),
        "win_step": bits_for(config.ifmap_spad_depth),
        "keep_step": bits_for(config.max_stride),
        "error": PEError,
    })


def decode_pe_command(m, config, cmd):
    """Add to ``m`` the logic that derives a command's products and checks it; returns a
    :func:`PEDecoded` value.

    ``qs = q*S``, ``pqs = p*q*S`` (filter spad entries), ``ring = window*q`` (ifmap spad
    entries), ``row_len = (width-1)*stride + S`` (ifmap positions per row), ``win_step =
    (stride mod window)*q`` (ring advance per output), ``keep_step = max(stride - S + 1, 0)``
    (how far the ifmap acceptance limit moves from one window to the next), and ``error``: the
    first check the
    command fails, in :class:`PEError` order, except ``FILTER_MISMATCH``, which depends on the
    PE's loaded filters. The logic is combinational and has multipliers, so
    :class:`~rsaccel.hw.pe_array.PEArray` computes it once for all PEs, in a register stage.
    """
    cfg = config
    dec = Signal(PEDecoded(cfg))
    # narrow products as LUT logic (a DSP multiplier's delay, twice in series for p*q*S,
    # limited small arrays' clock)
    c_qs = shift_add_product(cmd.q, cmd.s)
    c_pqs = shift_add_product(c_qs, cmd.p)
    c_ring = shift_add_product(cmd.window, cmd.q)
    # LOAD_RUN only without zero skipping (whose sequencer passes zeros as soon as it runs)
    load_run = C(0) if cfg.zero_skipping else cmd.op == PEOp.LOAD_RUN
    is_run = (cmd.op == PEOp.RUN) | load_run
    m.d.comb += [
        dec.qs.eq(c_qs), dec.pqs.eq(c_pqs), dec.ring.eq(c_ring),
        dec.row_len.eq(shift_add_product((cmd.width - 1)[:len(cmd.width)], cmd.stride)
                       + cmd.s),
        dec.win_step.eq(shift_add_product(cmd.q,
                                          cmd.stride % Mux(cmd.window == 0, 1, cmd.window))),
        dec.keep_step.eq(Mux(cmd.stride + 1 > cmd.s, cmd.stride + 1 - cmd.s, 0)),
    ]
    with m.If((cmd.op != PEOp.LOAD_FILTERS) & ~is_run & (cmd.op != PEOp.CLEAR)):
        m.d.comb += dec.error.eq(PEError.BAD_OP)
    with m.Elif(cmd.op == PEOp.CLEAR):
        m.d.comb += dec.error.eq(PEError.NONE)
    with m.Elif((cmd.s == 0) | (cmd.p == 0) | (cmd.q == 0)
                | (is_run & (cmd.rows == 0))):
        m.d.comb += dec.error.eq(PEError.ZERO_FIELD)
    with m.Elif((c_pqs > cfg.filter_spad_depth) | (c_qs > cfg.ifmap_spad_depth)
                | (cmd.p > cfg.psum_spad_depth)):
        m.d.comb += dec.error.eq(PEError.SPAD_OVERFLOW)
    with m.Elif(is_run & ((cmd.stride == 0) | (cmd.stride > cfg.max_stride))):
        m.d.comb += dec.error.eq(PEError.BAD_STRIDE)
    with m.Elif(is_run & ((cmd.width == 0) | (cmd.width > cfg.max_ofmap_width))):
        m.d.comb += dec.error.eq(PEError.BAD_WIDTH)
    with m.Elif(is_run & ((cmd.window < cmd.s) | (c_ring > cfg.ifmap_spad_depth))):
        m.d.comb += dec.error.eq(PEError.BAD_WINDOW)
    return dec


#: Names of the PE performance counters, in order.
PE_COUNTER_NAMES = ("macs", "gated_macs", "filter_spad_reads", "filter_spad_writes",
                    "ifmap_spad_reads", "ifmap_spad_writes", "psum_spad_reads",
                    "psum_spad_writes")


def PECounters(config):
    """Layout of the PE performance counters (each ``config.counter_width`` bits, wrapping)."""
    return data.StructLayout({name: config.counter_width for name in PE_COUNTER_NAMES})


def PEEvents(config):
    """Layout of a PE's per-cycle counter increments: one bit each, except ``gated_macs``, which
    with ``zero_skipping`` can grow by up to ``filter_spad_depth`` in one cycle."""
    gated = bits_for(config.filter_spad_depth) if config.zero_skipping else 1
    return data.StructLayout({name: gated if name == "gated_macs" else 1
                              for name in PE_COUNTER_NAMES})


class ProcessingElement(wiring.Component):
    """Row-stationary processing element.

    Convolves ``q`` ifmap rows (channels) with ``p`` x ``q`` filter rows of width ``S`` at stride
    ``U``, producing ``p`` psum rows of ``F`` outputs each::

        psum_out[f][k] = psum_in[f][k] + sum_{s<S} sum_{c<q} ifmap[c][f*U + s] * filt[k][c][s]

    wrapped to ``acc_width`` bits. Each output starts from zero and ``psum_in`` is added by its
    last MAC slot, so a PE needs the psum from below only when it finishes an output: the PEs
    of a vertical chain work on the same output at once, a few cycles apart, instead of one
    output apart. Filters stay in the filter spad across rows (row stationary);
    the ifmap spad is a sliding window of ``S`` positions by ``q`` channels, refilled while the
    MACs of the current window run; the psum spad holds ``p`` accumulators.

    Stream orders
    -------------
    - ``filt``: ``p*q*S`` values, ``s`` outermost, then ``c``, then ``k`` (filter spad address
      ``(s*q + c)*p + k``), accepted after a ``LOAD_FILTERS`` command, in transfers of
      ``g = config.filter_group`` values (:func:`FilterGroup`): ``ceil(p*q*S/g)`` transfers,
      the last one padded (its pad values are dropped). With ``g = 1`` a value is written in
      the cycle it is taken; with ``g > 1`` a transfer is held and written a value a cycle
      from the next cycle on, and the next transfer is taken in the cycle the last value of
      the held one is written, unless that value is the command's last (``filt.ready``
      depends on registers only).
    - ``ifmap``: per row ``(F-1)*U + S`` positions, each as ``q`` values (channel innermost).
      Positions no window uses (when ``U > S``) are accepted at once and dropped. The ifmap
      spad is a ring of ``window`` positions, so the stream may run up to ``window`` positions
      ahead of the oldest position a MAC still needs. With ``config.ifmap_lookahead`` this holds
      across rows: once a row is complete, the next row's positions enter the slots the row's last
      window has finished with (``window - S`` when it starts, one more with each ``s``), so
      a PE with its stream ahead goes from row to row without a gap.
    - ``psum_in`` (only when ``psum_in_en``) and ``psum_out``: per output ``f``, ``p`` values,
      filter index innermost, moved in transfers of ``g = config.psum_group`` consecutive
      filters (:func:`PsumGroup`, element 0 first): ``ceil(p/g)`` transfers per output, the
      last one padded (``psum_in`` pad values are ignored, ``psum_out`` pad values are zero).
      ``psum_in`` transfers enter a FIFO of :meth:`psum_fifo_depth` transfers (by default a
      window's worth at the largest ``p``) whenever it has room and the running command
      still expects some (``rows*F*ceil(p/g)``), ahead of the MACs; the slot of filter ``k``
      with ``k mod g = 0`` takes one from the FIFO and holds it for the next ``g - 1``
      filters. So, with the default depth, the psum network is never held while a PE works
      through a window's last slots.

    Latency and back-pressure
    -------------------------
    One MAC slot (``s, c, k``) issues per cycle when its ifmap position is present, its psum
    input (last slot of an output) is in the input FIFO and the pipeline is not stalled, so a
    window
    costs ``p*q*S`` cycles and refilling the window overlaps with computation. The datapath has
    four stages (filter spad read, operand registers, multiply, accumulate; the operand stage
    keeps the filter spad's block RAM output and the multiplier in separate cycles): a
    ``psum_out`` transfer appears in the output FIFO four cycles after the last slot of its
    last filter issues (the group's other sums wait in a register). ``psum_out`` back-pressure stalls the
    whole pipeline once the output FIFO (:meth:`psum_fifo_depth` transfers) is full; nothing is lost on any stall. Every
    input stream may stall at any time. Ready signals never depend combinationally on
    ``psum_out.ready``; ``psum_in.ready`` depends on registers only. A ``psum_in`` transfer
    can be used from the cycle after it is taken.

    Storage
    -------
    The three spads are ``amaranth.lib.memory`` memories: the filter spad with a synchronous
    read port (its read is the first pipeline stage, so it can be a block RAM; with
    ``config.filter_spad_block_ram`` it asks synthesis for one), the ifmap spad
    (value and zero flag) and the psum spad each with one asynchronous read port and one write
    port, which FPGA flows map to distributed (LUT) RAM instead of registers and read
    multiplexers. Their contents are not reset; every entry is written before it is read.

    Zero gating
    -----------
    Every ifmap spad entry has a zero flag. With ``config.zero_gating`` a slot whose ifmap value is
    zero skips the filter read, the multiplication and the accumulate (it still costs its cycle)
    and counts in ``counters.gated_macs`` instead of ``counters.macs``.

    Zero skipping
    -------------
    With ``config.zero_skipping`` zeros also cost no cycles. The ``q*S`` ifmap operands of a
    window are taken as slots ``j = s*q + c``; a priority encoder over the ring's zero flags
    finds the next slot that is non-zero (or not yet received) and issues its ``p`` filter
    slots, passing every zero before it in the same cycle. The first issued slot of a window
    starts from zero; the last issued one adds ``psum_in`` and emits the sums, and is known only
    when every later operand of the window has arrived and is zero, so the PE waits for that
    rather than guess: which slots issue depends on the data only, never on stalls, and every
    counter stays deterministic. A window of zeros issues its last slot (gated) to emit
    ``psum_in`` or zero. ``gated_macs`` still counts every zero-operand MAC, skipped or not
    (``events.gated_macs`` is then several bits wide); ``ifmap_spad_reads`` counts issued
    slots only. A window then costs ``p`` cycles per non-zero operand (``p`` for a window of
    zeros) when the ifmap stream keeps up. Deciding the last slot's role can cost a wait: about
    a cycle per row with the largest ring (``window = ifmap_spad_depth // q``), but up to
    ``p`` cycles per window on dense data when the ring has no slack (``window = S``), where
    the next operands enter only as the issue position passes the old ones.

    Access counting
    ---------------
    ``ifmap_spad_reads`` counts every issued slot (every slot without zero skipping);
    ``filter_spad_reads`` every non-gated slot. The psum
    spad is not read by the first slot of an output (it starts from zero) and not
    written by the last (the sum leaves as ``psum_out``); a gated slot that is neither first nor
    last does not touch it.

    Parameters
    ----------
    config : AccelConfig
        Widths and spad depths.
    predecoded : bool
        Take the command's products and checks from the ``decoded`` input (which must
        describe ``cmd.payload``, see :func:`decode_pe_command`) instead of computing them.

    Attributes
    ----------
    decoded : In(PEDecoded(config))
        Only with ``predecoded``: :func:`decode_pe_command` of ``cmd.payload``.
    cmd : In(stream.Signature(PECommand(config)))
        Commands; one is accepted when the previous one has finished issuing (CLEAR waits until
        the pipeline is empty, so it zeroes final counts). A ``LOAD_RUN`` takes its filters as
        ``LOAD_FILTERS`` does while its ifmap and ``psum_in`` streams are already accepted as
        for ``RUN``; its first MAC issues in the cycle after the last filter value is written. An invalid command is dropped and
        sets ``error`` if no error is recorded yet.
    filt : In(stream.Signature(FilterGroup(config)))
    ifmap : In(stream.Signature(signed(data_width)))
    psum_in : In(stream.Signature(PsumGroup(config)))
    psum_out : Out(stream.Signature(PsumGroup(config)))
    busy : Out(1)
        A command is executing or results are still in the pipeline or output FIFO.
    error : Out(PEError)
        Sticky error code.
    counters : Out(PECounters(config))
        Performance counters.
    events : Out(PEEvents(config))
        The counters' increments of this cycle (for array-wide totals).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`AccelConfig`.
    """

    def __init__(self, config, *, predecoded=False):
        require_config(config)
        self._config = config
        self._predecoded = bool(predecoded)
        super().__init__({
            "cmd": In(stream.Signature(PECommand(config))),
            **({"decoded": In(PEDecoded(config))} if predecoded else {}),
            "filt": In(stream.Signature(FilterGroup(config))),
            "ifmap": In(stream.Signature(signed(config.data_width))),
            "psum_in": In(stream.Signature(PsumGroup(config))),
            "psum_out": Out(stream.Signature(PsumGroup(config))),
            "busy": Out(1),
            "error": Out(PEError),
            "counters": Out(PECounters(config)),
            "events": Out(PEEvents(config)),
        })

    @property
    def config(self):
        return self._config

    @staticmethod
    def psum_fifo_depth(config):
        """Transfers the ``psum_in`` FIFO and the psum output FIFO each hold:
        ``config.psum_fifo_depth``, or if that is 0 one window's at the largest ``p``,
        ``ceil(psum_spad_depth / psum_group)``."""
        return config.psum_fifo_depth or -(-config.psum_spad_depth // config.psum_group)

    def elaborate(self, platform):
        cfg = self._config
        dw, aw = cfg.data_width, cfg.acc_width
        m = Module()

        # --- storage ------------------------------------------------------------------------
        m.submodules.filter_spad = filter_spad = memory.Memory(
            shape=signed(dw), depth=cfg.filter_spad_depth, init=[],
            attrs={"ram_style": "block"} if cfg.filter_spad_block_ram else None)
        filt_wr = filter_spad.write_port()
        filt_rd = filter_spad.read_port()
        # ifmap spad: value and its zero flag; one write port, one asynchronous read port
        m.submodules.ifmap_spad = ifmap_spad = memory.Memory(
            shape=dw + 1, depth=cfg.ifmap_spad_depth, init=[])
        ifmap_wr = ifmap_spad.write_port()
        ifmap_rd = ifmap_spad.read_port(domain="comb")
        m.submodules.psum_spad = psum_spad = memory.Memory(
            shape=signed(aw), depth=cfg.psum_spad_depth, init=[])
        psum_wr = psum_spad.write_port()
        psum_rd = psum_spad.read_port(domain="comb")
        group = cfg.psum_group
        # sums wait here for the output network or the PE above; psum_in transfers wait in
        # the input FIFO until their window's last slots (a window's worth of each by default)
        fifo_depth = self.psum_fifo_depth(cfg)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=aw * group, depth=fifo_depth)
        m.submodules.in_fifo = in_fifo = fifo.SyncFIFO(width=aw * group, depth=fifo_depth)

        # --- latched command ----------------------------------------------------------------
        pos_w = bits_for(cfg.max_ifmap_row_width)
        slot_w = bits_for(cfg.ifmap_spad_depth)
        fad_w = bits_for(cfg.filter_spad_depth)
        s_reg = Signal(slot_w)
        p_reg = Signal(bits_for(cfg.psum_spad_depth))
        q_reg = Signal(slot_w)
        u_reg = Signal(bits_for(cfg.max_stride))
        f_reg = Signal(bits_for(cfg.max_ofmap_width))
        rows_left = Signal(PE_ROWS_WIDTH)
        psum_in_en = Signal()
        # the fields' last indices, so the sequencers compare with registers, not subtractors
        s_last, q_last, p_last = Signal.like(s_reg), Signal.like(q_reg), Signal.like(p_reg)
        f_last, u_last = Signal.like(f_reg), Signal.like(u_reg)

        win_reg = Signal(slot_w)       # ring size in positions
        ring = Signal(slot_w)          # window*q: ifmap spad entries in use
        pqs = Signal(fad_w)            # p*q*S: filter spad entries in use
        loaded_pqs = Signal(fad_w)     # p*q*S of the last LOAD_FILTERS
        row_len = Signal(pos_w)        # (F-1)*U + S ifmap positions per row
        win_step = Signal(slot_w)      # (U mod window)*q: ring advance from window to window
        n_reg = Signal(slot_w)         # q*S: MAC slots (of p filters each) per window

        # --- command decoding (here, or once for the array: ``decoded`` input) ------------
        cmd = self.cmd.payload
        dec = self.decoded if self._predecoded else decode_pe_command(m, cfg, cmd)
        c_pqs = dec.pqs
        is_run = cmd.op == PEOp.RUN
        cmd_error = Signal(PEError)
        with m.If(dec.error != PEError.NONE):
            m.d.comb += cmd_error.eq(dec.error)
        with m.Elif((cmd.op == PEOp.RUN) & (c_pqs != loaded_pqs)):
            m.d.comb += cmd_error.eq(PEError.FILTER_MISMATCH)

        # --- counters -----------------------------------------------------------------------
        cnt = self.counters
        incr = {name: Signal(self.events[name].shape(), name=f"inc_{name}")
                for name in cnt.shape().members}
        clear_counters = Signal()
        for name, inc in incr.items():
            m.d.comb += self.events[name].eq(inc)
            with m.If(clear_counters):
                m.d.sync += cnt[name].eq(0)
            with m.Elif(inc):
                m.d.sync += cnt[name].eq(cnt[name] + inc)

        # --- filter loading -----------------------------------------------------------------
        fload_addr = Signal(fad_w)
        fgroup = cfg.filter_group
        if fgroup > 1:
            fhold = Signal(FilterGroup(cfg))            # the transfer being written
            fhold_left = Signal(range(fgroup + 1))      # its values still to write
            fhold_index = Signal(range(fgroup))         # the next one

        # --- ifmap window (write side) ------------------------------------------------------
        wpos = Signal(pos_w)           # positions completely received in this row
        wpos_next = Signal(pos_w)      # its value in the next cycle
        wpos_taken = Signal(pos_w)     # ... as far as this cycle's ifmap transfer decides
        wchan = Signal(slot_w)         # channel of the value expected next
        wslot = Signal(slot_w)         # (wpos mod window) * q
        wmod_u = Signal(bits_for(cfg.max_stride))  # wpos mod U
        # With config.ifmap_lookahead the ring takes the next row's positions while the
        # current row's last window still runs: once a row is complete, the write side goes
        # on with the next one (``w_ahead``), into the slots the last window has finished with.
        lookahead = cfg.ifmap_lookahead
        w_ahead = Signal()             # the write side is one row ahead (this row complete)
        w_ahead_next = Signal()
        row_last = Signal(pos_w)       # row_len - 1
        keep_ahead = Signal(slot_w)    # next-row positions below this may enter
        ahead_base = Signal(slot_w)    # window - S: free slots when the last window starts
        f_prev = Signal.like(f_reg)    # width - 2: the window before the last
        row_step = Signal(slot_w)      # (S mod window)*q: ring advance from row to row

        # --- issue side ---------------------------------------------------------------------
        out_f = Signal(bits_for(cfg.max_ofmap_width))
        win_base = Signal(pos_w)       # out_f * U: first position of the current window
        win_slot = Signal(slot_w)      # (win_base mod window) * q
        cur_s = Signal(slot_w)
        cur_c = Signal(slot_w)
        cur_k = Signal(bits_for(cfg.psum_spad_depth))
        cur_slot = Signal(slot_w)      # ((win_base + cur_s) mod window) * q
        faddr = Signal(fad_w)          # (cur_s*q + cur_c)*p + cur_k

        # psum_in acceptance: the transfers the running command still expects (per row, F
        # outputs of ceil(p/g) transfers each), taken whenever the input FIFO has room
        lg = (group - 1).bit_length()
        max_groups = -(-cfg.psum_spad_depth // group)
        in_groups = Signal(range(max_groups + 1))  # transfers per output
        in_k = Signal(range(max_groups + 1))
        in_f = Signal(bits_for(cfg.max_ofmap_width))
        in_rows = Signal(PE_ROWS_WIDTH)

        running = Signal()
        load_active = Signal()         # the filter loader takes the filt stream this cycle
        load_done = Signal()           # ... and writes the command's last value
        run_loading = Signal()         # a LOAD_RUN's filters are still loading
        slot_ready = Signal()          # the ifmap operand(s) the next slot needs are present
        stall = Signal()
        last_row_done = Signal()       # the final slot of the command's last row issues
        pipeline_busy = Signal()       # MACs in stages A, M or B
        keep_until = Signal(pos_w + 1)  # ifmap positions below this may enter (see below)
        keep_step = Signal(bits_for(cfg.max_stride))

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(~((cmd.op == PEOp.CLEAR) & pipeline_busy))
                # the command's fields are latched in every IDLE cycle, whether a command is
                # taken or not: nothing reads them until the PE leaves IDLE, and then they hold
                # the command it took. Their clock enable is the local state alone, not the
                # array-wide command handshake (a long, high-fan-out path in large arrays).
                m.d.sync += [
                    s_reg.eq(cmd.s), p_reg.eq(cmd.p), q_reg.eq(cmd.q),
                    u_reg.eq(cmd.stride), f_reg.eq(cmd.width),
                    s_last.eq(cmd.s - 1), q_last.eq(cmd.q - 1), p_last.eq(cmd.p - 1),
                    f_last.eq(cmd.width - 1), u_last.eq(cmd.stride - 1),
                    rows_left.eq(cmd.rows), psum_in_en.eq(cmd.psum_in_en),
                    win_reg.eq(cmd.window), ring.eq(dec.ring), pqs.eq(c_pqs),
                    n_reg.eq(dec.qs), row_len.eq(dec.row_len),
                    win_step.eq(dec.win_step),
                    fload_addr.eq(0),
                ]
                if not cfg.zero_skipping:
                    m.d.sync += [keep_until.eq(cmd.window), keep_step.eq(dec.keep_step)]
                if lookahead:
                    m.d.sync += [
                        row_last.eq(dec.row_len - 1), ahead_base.eq(cmd.window - cmd.s),
                        f_prev.eq(cmd.width - 2),
                        row_step.eq(Mux(dec.qs == dec.ring, 0, dec.qs)),
                    ]
                if lookahead and not cfg.zero_skipping:
                    m.d.sync += keep_ahead.eq(Mux(cmd.width == 1, cmd.window - cmd.s, 0))
                m.d.sync += [in_groups.eq((cmd.p + group - 1) >> lg), in_k.eq(0), in_f.eq(0),
                             in_rows.eq(Mux(cmd.psum_in_en, cmd.rows, 0))]
                with m.If(self.cmd.valid & self.cmd.ready):
                    with m.If(cmd_error != PEError.NONE):
                        with m.If(self.error == PEError.NONE):
                            m.d.sync += self.error.eq(cmd_error)
                    with m.Elif(cmd.op == PEOp.CLEAR):
                        m.d.comb += clear_counters.eq(1)
                        m.d.sync += self.error.eq(PEError.NONE)
                    with m.Else():
                        with m.If(cmd.op == PEOp.LOAD_FILTERS):
                            m.d.sync += loaded_pqs.eq(c_pqs)
                            m.next = "LOAD"
                        with m.Else():
                            with m.If(cmd.op == PEOp.LOAD_RUN):
                                m.d.sync += [loaded_pqs.eq(c_pqs), run_loading.eq(1)]
                            m.next = "RUN"
            with m.State("LOAD"):
                m.d.comb += load_active.eq(1)
                with m.If(load_done):
                    m.next = "IDLE"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(last_row_done):
                    m.next = "IDLE"

        # the filter loader: LOAD_FILTERS, and LOAD_RUN until its last value is written
        with m.If(run_loading):
            m.d.comb += load_active.eq(1)
            with m.If(load_done):
                m.d.sync += run_loading.eq(0)
        with m.If(load_active):
            if fgroup == 1:
                m.d.comb += [
                    self.filt.ready.eq(1),
                    filt_wr.addr.eq(fload_addr),
                    filt_wr.data.eq(self.filt.payload),
                    filt_wr.en.eq(self.filt.valid),
                    incr["filter_spad_writes"].eq(self.filt.valid),
                ]
                with m.If(self.filt.valid):
                    m.d.sync += fload_addr.eq(fload_addr + 1)
                    with m.If(fload_addr == pqs - 1):
                        m.d.comb += load_done.eq(1)
            else:
                # take a transfer when the held one is empty or writes its last value now,
                # unless that value is the pass's last (the next transfer is the next
                # LOAD's)
                writing = fhold_left != 0
                final = fload_addr == pqs - 1
                m.d.comb += [
                    self.filt.ready.eq((fhold_left == 0) | ((fhold_left == 1) & ~final)),
                    filt_wr.addr.eq(fload_addr),
                    filt_wr.data.eq(fhold[fhold_index]),
                    filt_wr.en.eq(writing),
                    incr["filter_spad_writes"].eq(writing),
                ]
                with m.If(writing):
                    m.d.sync += [fload_addr.eq(fload_addr + 1),
                                 fhold_index.eq(fhold_index + 1),
                                 fhold_left.eq(fhold_left - 1)]
                with m.If(self.filt.valid & self.filt.ready):
                    m.d.sync += [fhold.eq(self.filt.payload), fhold_index.eq(0),
                                 fhold_left.eq(fgroup)]
                with m.If(writing & final):
                    # the pass's last value: the rest of the transfer is padding
                    m.d.sync += fhold_left.eq(0)
                    m.d.comb += load_done.eq(1)

        # ifmap acceptance: the slot of position wpos belongs to wpos - window, which must already
        # be consumed: wpos < win_base + min(cur_s, U) + window (positions from win_base + U on
        # are still needed by the next window). Dropped positions write nothing and pass.
        # (with zero skipping the sequencer tracks slot j = s*q + c; it sets skip_pos = j // q)
        # Without zero skipping the limit is a register kept equal to that sum as its terms
        # change (so no adder sits in front of ``ifmap.ready``): ``window`` when a command
        # starts and after each row, +1 when cur_s steps while below U, +keep_step after each
        # window.
        skip_pos = Signal(slot_w)
        if cfg.zero_skipping:
            m.d.comb += keep_until.eq(win_base + Mux(skip_pos < u_reg, skip_pos, u_reg)
                                      + win_reg)
        # zero flag of every ifmap spad entry as a vector, for the skipping sequencer
        zflags = Signal(cfg.ifmap_spad_depth) if cfg.zero_skipping else None
        needed = Signal()
        m.d.comb += needed.eq(wmod_u < s_reg)
        wr_index = Signal(slot_w)
        m.d.comb += wr_index.eq(wslot + wchan)
        # a row ahead, the next row's positions wait for the last window's free slots (the
        # skipping sequencer frees them as it passes positions: ``skip_pos``)
        if cfg.zero_skipping:
            m.d.comb += keep_ahead.eq(Mux(out_f == f_last, ahead_base + skip_pos, 0))
        within = Mux(w_ahead, wpos < keep_ahead, wpos < keep_until)
        m.d.comb += w_ahead_next.eq(w_ahead)
        m.d.sync += w_ahead.eq(w_ahead_next)
        m.d.comb += self.ifmap.ready.eq(running & (wpos < row_len) & (~needed | within))
        m.d.comb += [wpos_taken.eq(wpos), wpos_next.eq(wpos_taken)]
        m.d.sync += wpos.eq(wpos_next)
        with m.If(self.ifmap.valid & self.ifmap.ready):
            with m.If(needed):
                m.d.comb += [
                    ifmap_wr.addr.eq(wr_index),
                    ifmap_wr.data.eq(Cat(self.ifmap.payload, self.ifmap.payload == 0)),
                    ifmap_wr.en.eq(1),
                ]
                m.d.comb += incr["ifmap_spad_writes"].eq(1)
                if cfg.zero_skipping:
                    for i in range(cfg.ifmap_spad_depth):
                        with m.If(wr_index == i):
                            m.d.sync += zflags[i].eq(self.ifmap.payload == 0)
            with m.If(wchan == q_last):
                m.d.comb += wpos_taken.eq(wpos + 1)
                m.d.sync += [
                    wchan.eq(0),
                    wslot.eq(Mux(wslot + q_reg >= ring, 0, wslot + q_reg)),
                    wmod_u.eq(Mux(wmod_u == u_last, 0, wmod_u + 1)),
                ]
                if lookahead:
                    with m.If((wpos == row_last) & ~w_ahead & (rows_left != 1)):
                        # the row is complete: go on with the next one
                        m.d.comb += [wpos_taken.eq(0), w_ahead_next.eq(1)]
                        m.d.sync += wmod_u.eq(0)
            with m.Else():
                m.d.sync += wchan.eq(wchan + 1)

        m.d.comb += [
            self.psum_in.ready.eq(running & (in_rows != 0) & in_fifo.w_rdy),
            in_fifo.w_en.eq(self.psum_in.valid & self.psum_in.ready),
            in_fifo.w_data.eq(self.psum_in.payload),
        ]
        with m.If(in_fifo.w_en):
            m.d.sync += in_k.eq(in_k + 1)
            with m.If(in_k == in_groups - 1):
                m.d.sync += [in_k.eq(0), in_f.eq(in_f + 1)]
                with m.If(in_f == f_last):
                    m.d.sync += [in_f.eq(0), in_rows.eq(in_rows - 1)]

        # issue stage: one MAC slot (s, c, k) per cycle; `first`/`last` mark the slots that
        # start from zero and that add psum_in and emit the sum
        first = Signal()
        last = Signal()
        rd_index = Signal(slot_w)
        faddr_now = Signal(fad_w)
        operand_ready = Signal()
        m.d.comb += operand_ready.eq(running & ~run_loading & slot_ready & ~stall)
        # psums come and go in groups of `group` consecutive filters (k) of one output: the
        # slot of k = 0 (mod group) takes a group from the input FIFO, the others use the
        # held copy
        k_in_group = Signal(max(lg, 1))
        if lg:
            m.d.comb += k_in_group.eq(cur_k[:lg])
        psum_hold = Signal(PsumGroup(cfg))
        in_group = PsumGroup(cfg)(in_fifo.r_data)
        adds_psum = Signal()
        need_psum = Signal()
        m.d.comb += [adds_psum.eq(last & psum_in_en),
                     need_psum.eq(adds_psum & (k_in_group == 0))]
        issue = Signal()
        m.d.comb += [
            issue.eq(operand_ready & (~need_psum | in_fifo.r_rdy)),
            in_fifo.r_en.eq(issue & need_psum),
        ]
        zero = Signal()
        m.d.comb += ifmap_rd.addr.eq(rd_index)
        m.d.comb += zero.eq(ifmap_rd.data[dw] if cfg.zero_gating else 0)
        m.d.comb += [
            filt_rd.addr.eq(faddr_now),
            filt_rd.en.eq(issue & ~zero),
            incr["ifmap_spad_reads"].eq(issue),
            incr["filter_spad_reads"].eq(issue & ~zero),
            incr["macs"].eq(issue & ~zero),
        ]
        end_of_window = Signal()
        end_of_row = Signal()
        m.d.comb += [
            end_of_window.eq((cur_k == p_last) & last),
            end_of_row.eq(end_of_window & (out_f == f_last)),
        ]
        m.d.comb += last_row_done.eq(issue & end_of_row & (rows_left == 1))

        def next_window():
            # the window's last slot issues: move to the next output (or row)
            next_slot = Signal(slot_w + 1)
            m.d.comb += next_slot.eq(win_slot + win_step)
            m.d.sync += [
                out_f.eq(out_f + 1),
                win_base.eq(win_base + u_reg),
                win_slot.eq(Mux(next_slot >= ring, next_slot - ring, next_slot)),
            ]
            row_slot = Signal(slot_w + 1)  # the next row's first slot
            m.d.comb += row_slot.eq(win_slot + row_step)
            with m.If(out_f == f_last):
                # row finished: the whole row has been received by now
                m.d.sync += [out_f.eq(0), win_base.eq(0), rows_left.eq(rows_left - 1)]
                restart = [win_slot.eq(0), wchan.eq(0), wslot.eq(0), wmod_u.eq(0)]
                if not lookahead:
                    # the ring starts afresh with every row
                    m.d.sync += restart
                    m.d.comb += wpos_next.eq(0)
                    return next_slot, row_slot
                with m.If(rows_left == 1):
                    # the command's last row: the ring starts afresh with the next command
                    m.d.sync += restart
                    m.d.comb += [wpos_next.eq(0), w_ahead_next.eq(0)]
                with m.Else():
                    # the write side is in the next row already, and the ring goes on
                    m.d.sync += win_slot.eq(Mux(row_slot >= ring, row_slot - ring, row_slot))
                    m.d.comb += w_ahead_next.eq(0)
                    with m.If((wpos_taken == row_len) & (rows_left != 2)):
                        # ... and has received all of it: on with the row after
                        m.d.comb += [wpos_next.eq(0), w_ahead_next.eq(1)]
                        m.d.sync += wmod_u.eq(0)
            return next_slot, row_slot

        if not cfg.zero_skipping:
            # every slot issues, s-major, c, then k innermost
            m.d.comb += [
                first.eq((cur_s == 0) & (cur_c == 0)),
                last.eq((cur_s == s_last) & (cur_c == q_last)),
                rd_index.eq(cur_slot + cur_c),
                faddr_now.eq(faddr),
                incr["gated_macs"].eq(issue & zero),
            ]
            # the slot's position win_base + cur_s has arrived (``need_pos < wpos``). The
            # comparison is made on next-cycle values into a register, so no adder or
            # comparator sits between the PE's state and ``issue`` (which drives the
            # psum network's array-wide handshake).
            need_pos = Signal(pos_w + 1)        # win_base + cur_s
            need_next = Signal(pos_w + 1)
            m.d.comb += need_next.eq(need_pos)
            m.d.sync += [need_pos.eq(need_next),
                         slot_ready.eq((need_next < wpos_next) | w_ahead_next)]
            with m.If(issue):
                m.d.sync += faddr.eq(faddr + 1)
                with m.If(cur_k != p_last):
                    m.d.sync += cur_k.eq(cur_k + 1)
                with m.Else():
                    m.d.sync += cur_k.eq(0)
                    with m.If(cur_c != q_last):
                        m.d.sync += cur_c.eq(cur_c + 1)
                    with m.Else():
                        m.d.sync += cur_c.eq(0)
                        with m.If(cur_s != s_last):
                            m.d.comb += need_next.eq(need_pos + 1)
                            m.d.sync += [
                                cur_s.eq(cur_s + 1),
                                cur_slot.eq(Mux(cur_slot + q_reg >= ring, 0,
                                                cur_slot + q_reg)),
                            ]
                            with m.If(cur_s < u_reg):
                                m.d.sync += keep_until.eq(keep_until + 1)
                            with m.If(out_f == f_last):
                                # the last window frees a slot for the next row
                                m.d.sync += keep_ahead.eq(keep_ahead + 1)
                        with m.Else():
                            m.d.sync += [cur_s.eq(0), faddr.eq(0),
                                         keep_until.eq(keep_until + keep_step)]
                            m.d.comb += need_next.eq(win_base + u_reg)
                            next_slot, row_slot = next_window()
                            m.d.sync += [
                                cur_slot.eq(Mux(next_slot >= ring, next_slot - ring,
                                                next_slot)),
                                keep_ahead.eq(Mux(out_f == f_prev, ahead_base, 0)),
                            ]
                            with m.If(out_f == f_last):
                                m.d.sync += [
                                    cur_slot.eq(Mux(rows_left == 1, 0,
                                                    Mux(row_slot >= ring, row_slot - ring,
                                                        row_slot)) if lookahead else 0),
                                    keep_until.eq(win_reg),
                                    keep_ahead.eq(Mux(f_last == 0, ahead_base, 0)),
                                ]
                                m.d.comb += need_next.eq(0)
        else:
            self._skipping_sequencer(
                m, depth=cfg.ifmap_spad_depth, zflags=zflags, win_slot=win_slot, ring=ring,
                wpos=wpos, win_base=win_base, s_reg=s_reg, q_reg=q_reg, p_reg=p_reg,
                n_reg=n_reg, pqs=pqs, cur_k=cur_k, running=running, stall=stall,
                issue=issue, zero=zero, first=first, last=last, rd_index=rd_index,
                faddr_now=faddr_now, slot_ready=slot_ready, gated_inc=incr["gated_macs"],
                next_window=next_window, skip_pos=skip_pos, wchan=wchan, w_ahead=w_ahead,
                cmd_taken=self.cmd.valid & self.cmd.ready, cmd=cmd)

        # pipeline stage A: filter spad read in flight
        a_valid = Signal()
        a_ifmap = Signal(signed(dw))
        a_gated = Signal()
        a_first = Signal()
        a_last = Signal()
        a_k = Signal.like(cur_k)
        a_psum = Signal(signed(aw))
        a_push = Signal()       # the slot completes a group of psum_out (see stage C)
        with m.If(~stall):
            m.d.sync += [
                a_valid.eq(issue),
                a_ifmap.eq(ifmap_rd.data[:dw]),
                a_gated.eq(zero),
                a_first.eq(first),
                a_last.eq(last),
                a_k.eq(cur_k),
                a_push.eq((k_in_group == group - 1) | (cur_k == p_last)),
                a_psum.eq(Mux(adds_psum, Mux(k_in_group == 0, in_group[0],
                                             psum_hold[k_in_group]), 0)),
            ]
        with m.If(issue & need_psum):
            m.d.sync += psum_hold.eq(in_group)
        # stage M: the operands in registers (the filter spad's read data, from a block RAM's
        # slow output, does not go straight into the multiplier)
        m_valid = Signal()
        m_ifmap = Signal(signed(dw))
        m_filt = Signal(signed(dw))
        m_gated = Signal()
        m_first = Signal()
        m_last = Signal()
        m_k = Signal.like(cur_k)
        m_psum = Signal(signed(aw))
        m_push = Signal()
        with m.If(~stall):
            m.d.sync += [
                m_valid.eq(a_valid), m_gated.eq(a_gated), m_first.eq(a_first),
                m_last.eq(a_last), m_k.eq(a_k), m_psum.eq(a_psum), m_push.eq(a_push),
            ]
            with m.If(a_valid & ~a_gated):
                m.d.sync += [m_ifmap.eq(a_ifmap), m_filt.eq(filt_rd.data)]
        # stage B: multiply
        b_valid = Signal()
        b_prod = Signal(signed(2 * dw))
        b_gated = Signal()
        b_first = Signal()
        b_last = Signal()
        b_k = Signal.like(cur_k)
        b_psum = Signal(signed(aw))
        b_push = Signal()
        with m.If(~stall):
            m.d.sync += [
                b_valid.eq(m_valid), b_gated.eq(m_gated), b_first.eq(m_first),
                b_last.eq(m_last), b_k.eq(m_k), b_psum.eq(m_psum), b_push.eq(m_push),
            ]
            with m.If(m_valid & ~m_gated):
                m.d.sync += b_prod.eq(m_ifmap * m_filt)
        # stage C: accumulate into the psum spad or emit (the last slot adds psum_in, which
        # is zero unless it was taken)
        base = Signal(signed(aw))
        total = Signal(signed(aw))
        m.d.comb += [
            psum_rd.addr.eq(b_k),
            base.eq(Mux(b_first, 0, psum_rd.data)),
            total.eq(base + Mux(b_gated, 0, b_prod) + b_psum),
            stall.eq(b_valid & b_last & b_push & ~out_fifo.w_rdy),
        ]
        # a window's sums leave in groups: the group's last filter (or the window's) pushes
        # the group into the output FIFO, the others wait in out_hold; elements past the
        # window's last filter are zero
        out_hold = Signal(PsumGroup(cfg))
        b_kg = Signal(max(lg, 1))
        if lg:
            m.d.comb += b_kg.eq(b_k[:lg])
        out_group = Signal(PsumGroup(cfg))
        for i in range(group):
            held = Mux(b_kg > i, out_hold[i], 0) if i < group - 1 else 0
            m.d.comb += out_group[i].eq(Mux(b_kg == i, total, held))
        with m.If(b_valid & ~stall):
            with m.If(b_last & b_push):
                m.d.comb += [out_fifo.w_en.eq(1), out_fifo.w_data.eq(out_group)]
            with m.Elif(b_last):
                for i in range(group):
                    with m.If(b_kg == i):
                        m.d.sync += out_hold[i].eq(total)
            with m.Elif(~b_gated | b_first):
                m.d.comb += [psum_wr.addr.eq(b_k), psum_wr.data.eq(total), psum_wr.en.eq(1)]
            m.d.comb += [
                incr["psum_spad_reads"].eq(~b_first & (~b_gated | b_last)),
                incr["psum_spad_writes"].eq(~b_last & (~b_gated | b_first)),
            ]

        m.d.comb += pipeline_busy.eq(a_valid | m_valid | b_valid)
        m.d.comb += [
            self.psum_out.valid.eq(out_fifo.r_rdy),
            self.psum_out.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.psum_out.ready),
            self.busy.eq(~self.cmd.ready | a_valid | m_valid | b_valid | out_fifo.r_rdy),
        ]
        return m

    @staticmethod
    def _skipping_sequencer(m, *, depth, zflags, win_slot, ring, wpos, win_base, s_reg, q_reg,
                            p_reg, n_reg, pqs, cur_k, running, stall, issue, zero, first, last,
                            rd_index, faddr_now, slot_ready, gated_inc, next_window, skip_pos,
                            wchan, w_ahead, cmd_taken, cmd):
        """Issue sequencer of the zero-skipping mode.

        The window's ``n = q*S`` slots are numbered ``j = s*q + c`` (ring entry
        ``(win_slot + j) mod ring``, filter address ``j*p + k``). From ``cur_j`` on, a priority
        encoder finds the first slot ``t`` that is non-zero, not yet received, or the window's
        last; the zeros before it are passed over in the same cycle, without issuing. ``t``
        issues its ``p`` filter slots when it is present and its role is known: it is the
        window's last processed slot (it emits the sums) when every later slot is present and
        zero. Until that is decided (a later slot not received yet and no received non-zero
        between) it waits, so which slots issue depends only on the data, never on timing. The
        first processed slot starts from zero; the last adds ``psum_in`` (if enabled). A
        window of zeros issues its last slot, gated, to emit ``psum_in`` (or zero).
        """
        j_w = bits_for(depth)
        # multiples of q and p, tabulated when a command is taken (adders, no multipliers):
        # slot i*q starts position i, slot j's filters start at filter address j*p
        jq_w = bits_for(depth + 1)
        q_times = Array(Signal(jq_w, name=f"q_times{i}") for i in range(depth + 1))
        p_times = Array(Signal.like(faddr_now, name=f"p_times{j}") for j in range(depth + 1))
        q_acc, p_acc = C(0, jq_w), C(0, len(faddr_now))
        for i in range(1, depth + 1):
            # saturated at depth + 1: slots beyond the spad start no position
            q_sum = Signal(jq_w + 1, name=f"q_sum{i}")
            q_next = Signal(jq_w, name=f"q_next{i}")
            p_next = Signal.like(faddr_now, name=f"p_next{i}")
            m.d.comb += [q_sum.eq(q_acc + cmd.q),
                         q_next.eq(Mux(q_sum > depth, depth + 1, q_sum)),
                         p_next.eq(p_acc + cmd.p)]
            with m.If(cmd_taken):
                m.d.sync += [q_times[i].eq(q_next), p_times[i].eq(p_next)]
            q_acc, p_acc = q_next, p_next
        cur_j = Signal(j_w)              # first slot of the window not yet passed
        cur_jp = Signal.like(faddr_now)  # cur_j * p
        started = Signal()               # a slot of this window has issued all its p slots
        last_hold = Signal()             # role of cur_j while its k > 0 slots issue

        # position of cur_j in the window (cur_j // q): earlier positions are free for new ones
        m.d.comb += skip_pos.eq(sum(cur_j >= q_times[i] for i in range(1, depth + 1)))

        # zero flags in window order
        lin = Signal(depth)
        for j in range(depth):
            idx = Signal(j_w + 1, name=f"lin_idx{j}")
            wrapped = Signal(j_w, name=f"lin_at{j}")
            m.d.comb += idx.eq(win_slot + j)
            m.d.comb += wrapped.eq(Mux(idx >= ring, idx - ring, idx))
            m.d.comb += lin[j].eq(zflags.bit_select(wrapped, 1))
        # slots received: from win_base on, at most the window (all of it once the ring takes
        # the next row)
        ahead = Signal.like(wpos)
        m.d.comb += ahead.eq(Mux(wpos > win_base, wpos - win_base, 0))
        avail = Signal(j_w + 1)
        with m.If(w_ahead | (ahead >= s_reg)):
            m.d.comb += avail.eq(n_reg)
        with m.Elif(wpos >= win_base):
            # plus the channels of position wpos received so far
            m.d.comb += avail.eq(q_times[ahead] + wchan)

        cand = Signal(depth)
        nz_present = Signal(depth)
        for j in range(depth):
            present = j < avail
            m.d.comb += [
                cand[j].eq((j >= cur_j) & (j < n_reg)
                           & (~lin[j] | ~present | (j == n_reg - 1))),
                nz_present[j].eq(~lin[j] & present),
            ]
        t = Signal(j_w)
        for j in reversed(range(depth)):
            with m.If(cand[j]):
                m.d.comb += t.eq(j)
        after_t = Signal(depth)
        for j in range(1, depth):
            m.d.comb += after_t[j].eq(t < j)
        nz_after = Signal()
        m.d.comb += nz_after.eq((nz_present & after_t).any())
        t_is_end = Signal()
        m.d.comb += t_is_end.eq(t == n_reg - 1)
        search_last = Signal()
        m.d.comb += search_last.eq(t_is_end | ~nz_after)
        decided = (t < avail) & (nz_after | (avail >= n_reg) | t_is_end)

        at_k0 = Signal()
        m.d.comb += at_k0.eq(cur_k == 0)
        t_now = Signal(j_w)
        tp = Signal.like(faddr_now)
        m.d.comb += tp.eq(p_times[t])
        jp_now = Signal.like(faddr_now)
        m.d.comb += [
            t_now.eq(Mux(at_k0, t, cur_j)),
            jp_now.eq(Mux(at_k0, tp, cur_jp)),
            faddr_now.eq(jp_now + cur_k),
            last.eq(Mux(at_k0, search_last, last_hold)),
            first.eq(~started),
            slot_ready.eq(~at_k0 | decided),
        ]
        rd = Signal(j_w + 1)
        m.d.comb += rd.eq(win_slot + t_now)
        m.d.comb += rd_index.eq(Mux(rd >= ring, rd - ring, rd))

        # gated MACs: the zeros passed over this cycle, the zeros after a window's last
        # processed slot (counted when it is chosen) and an issued zero slot
        passing = Signal()
        m.d.comb += passing.eq(running & ~stall & at_k0)
        m.d.comb += gated_inc.eq(Mux(passing, tp - cur_jp, 0)
                                 + Mux(issue & at_k0 & search_last, pqs - p_reg - tp, 0)
                                 + (issue & zero))

        with m.If(passing):
            m.d.sync += [cur_j.eq(t), cur_jp.eq(tp), last_hold.eq(search_last)]
        with m.If(issue):
            with m.If(cur_k != p_reg - 1):
                m.d.sync += cur_k.eq(cur_k + 1)
            with m.Else():
                m.d.sync += cur_k.eq(0)
                with m.If(last):
                    m.d.sync += [cur_j.eq(0), cur_jp.eq(0), started.eq(0)]
                    next_window()
                with m.Else():
                    m.d.sync += [cur_j.eq(t_now + 1), cur_jp.eq(jp_now + p_reg),
                                 started.eq(1)]
