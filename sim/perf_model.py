"""Analytical performance and energy model of a layer on the row-stationary accelerator.

For a configuration, a layer and a :class:`~rsaccel.gen.compiler.Mapping`, :func:`model_layer`
counts what the RTL's counters count (``rsaccel.hw.core.CORE_COUNTER_NAMES``): MACs and gated
MACs, spad reads and writes per data type, multicast-network transfers per data type,
global-buffer reads and writes per client, and stream words in and out. The counts follow the
compiler's pass schedule (:func:`~rsaccel.gen.compiler.iter_blocks`) and the hardware's access
rules (:class:`~rsaccel.hw.pe.ProcessingElement`), not a simulation, so a mapping is scored in
microseconds to milliseconds.

Every count but three is a function of the layer and the mapping alone and is exact. Gated MACs
and the psum-spad reads and writes also depend on which ifmap values are zero: given the ifmap
they are exact, given an expected zero fraction (independent zeros; padding is always zero)
they are expectations.

Cycles: every command outside the RUN passes is costed exactly from its words; RUN passes are
stepped cycle by cycle (:mod:`rsaccel.sim.pass_timing`, once per distinct pass) or, for fast
ranking, estimated from the pass's bottleneck (:func:`pass_cycles`). Energy uses
Eyeriss's normalised access costs (``../shared/eyeriss-reference.md`` section 4) per level and
data type.

numpy and Python only; no HDL simulator.
"""

from dataclasses import dataclass, field
import math

import numpy as np

from ..gen.compiler import (Block, Layer, LayerError, Mapping, block_layout, padded_p,
                            channel_set_problem, filter_row_elements, ifmap_chunk_words,
                            ifmap_regions, iter_blocks, iter_chunks, iter_passes,
                            read_beside_next, reused_blocks, run_pass_program, run_sizes,
                            can_fuse_loads, filter_block_shape, fuses_load, set_columns,
                            set_offset)
from ..hw.core import NEST_WORDS, OUTPUT_WORDS

__all__ = ["EnergyCosts", "LayerModel", "COUNT_NAMES", "zero_probability", "model_layer",
           "pass_cycles", "load_transfer_cycles", "PassShape", "ZeroStats", "block_classes",
           "energy_breakdown", "rlc_stream", "rlc_words_expected", "exact_run_cycles",
           "CYCLE_MODELS", "EXACT_MIN_FIFO_DEPTH"]

#: How :func:`model_layer` times RUN passes.
CYCLE_MODELS = ("exact", "estimate")
#: The cycles are exact only with buffer-reader and output FIFOs of at least this many entries
#: (the defaults): they keep every reader and READ at an element or word a cycle.
EXACT_MIN_FIFO_DEPTH = 4

#: Counters the model predicts exactly (the RTL's, less the cycle and stall counters).
COUNT_NAMES = (
    "macs", "gated_macs", "filter_spad_reads", "filter_spad_writes", "ifmap_spad_reads",
    "ifmap_spad_writes", "psum_spad_reads", "psum_spad_writes",
    "glb_filter_reads", "glb_ifmap_reads", "glb_psum_reads", "glb_host_reads",
    "glb_host_writes", "glb_output_writes",
    "noc_filter_transfers", "noc_ifmap_transfers", "noc_psum_transfers",
    "noc_output_transfers", "words_in", "words_out",
)

# words of the commands around the data (docs/stream-format.md)
_LOAD_PASS_WORDS = 1 + 1 + NEST_WORDS                       # header, PE command, filter nest
_RUN_PASS_WORDS = 1 + 1 + 2 * NEST_WORDS + OUTPUT_WORDS    # PE command, ifmap, psum, output
# cycles from a PASS header until the decoder is back in IDLE: the header, each part's words
# plus its PASS_NEXT and push cycles, and the final PASS_NEXT (hw/core.py)
_LOAD_PASS_DECODE = _LOAD_PASS_WORDS + 2 * 2 + 1
_RUN_PASS_DECODE = _RUN_PASS_WORDS + 2 * 4 + 1
# a RUN pass that loads its filters too (PE command LOAD_RUN) carries the filter nest
_FUSED_PASS_DECODE = _RUN_PASS_DECODE + NEST_WORDS + 2


def detached_saving(pass_cycles, decode_cycles, write_cycles):
    """Cycles a detached PASS (:attr:`~rsaccel.hw.core.PassFlag.DETACH`) saves against one the
    decoder waits for.

    ``pass_cycles`` is the waited-for pass's time from its header to the next header,
    ``decode_cycles`` the time until its descriptors are pushed and ``write_cycles`` the WRITE
    commands that follow it (0 if the next command is not a WRITE). Detached, the next other
    command starts in the first cycle the pass is idle (one cycle before the decoder would have
    left PASS_WAIT) or when the writes end, whichever is later.
    """
    return pass_cycles + write_cycles - max(decode_cycles + write_cycles, pass_cycles - 1)


@dataclass(frozen=True)
class EnergyCosts:
    """Energy per access, normalised to one MAC (Eyeriss, ISCA 2016, 65 nm).

    ``spad`` is a PE register-file access, ``array`` a transfer over a network (per value and
    destination group, as the RTL counts it), ``glb`` a global-buffer access of one value,
    ``dram`` a 16-bit word over the stream.
    """
    mac: float = 1.0
    spad: float = 1.0
    array: float = 2.0
    glb: float = 6.0
    dram: float = 200.0


@dataclass(frozen=True)
class PassShape:
    """What decides the cycles of one RUN pass (and of the LOAD pass before it)."""
    nn: int
    ee: int
    t: int
    p: int
    q: int
    rows_in: int
    r: int = 1


@dataclass
class LayerModel:
    """The model's answer for one layer and mapping.

    ``counts`` has every name of :data:`COUNT_NAMES`; ``dram_words`` splits ``words_in`` and
    ``words_out`` by what they carry; ``energy`` is per level (``mac``, ``spad``, ``array``,
    ``glb``, ``dram``), each a dict per data type, in units of one MAC.
    """
    layer: Layer
    mapping: Mapping
    counts: dict
    dram_words: dict
    cycles: int
    cycle_parts: dict
    passes: int
    energy: dict = field(default_factory=dict)
    #: ``"exact"`` when ``cycles`` is the RTL's with a stream that never stalls, otherwise
    #: ``"estimate"`` (see :func:`model_layer`)
    cycle_model: str = "estimate"

    @property
    def total_energy(self):
        return sum(sum(v.values()) for v in self.energy.values())

    def utilisation(self, config):
        """Useful MACs (the layer's) per PE-cycle of the whole array."""
        return self.layer.macs / (self.cycles * config.rows * config.cols) if self.cycles else 0.0

    def as_dict(self, config=None):
        out = {"mapping": self.mapping.as_dict(), "counts": dict(self.counts),
               "dram_words": dict(self.dram_words), "cycles": self.cycles,
               "cycle_parts": dict(self.cycle_parts), "passes": self.passes,
               "cycle_model": self.cycle_model,
               "energy": {k: dict(v) for k, v in self.energy.items()},
               "total_energy": self.total_energy, "macs": self.layer.macs}
        if config is not None:
            out["utilisation"] = self.utilisation(config)
        return out


def zero_probability(layer, ifmap=None, zero_fraction=0.0):
    """``(N, C, Hp, Wp)`` probability that each padded ifmap value is zero.

    With ``ifmap`` given it is the exact 0/1 indicator; otherwise every value is zero with
    probability ``zero_fraction`` and the padding always is.
    """
    shape = (layer.N, layer.C, layer.H, layer.W)
    if ifmap is not None:
        ifmap = np.asarray(ifmap)
        if ifmap.shape != shape:
            raise ValueError(f"ifmap must have shape {shape}, not {ifmap.shape}")
        inner = (ifmap == 0).astype(np.float64)
    else:
        if not 0.0 <= float(zero_fraction) <= 1.0:
            raise ValueError(f"zero_fraction must be within 0..1, not {zero_fraction!r}")
        inner = np.full(shape, float(zero_fraction))
    pad = layer.pad
    return np.pad(inner, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=1.0)


class ZeroStats:
    """Zero ifmap operands of one filter's MAC slots, for the data-dependent counts.

    Built once per layer and ifmap (or zero fraction) and shared by every mapping scored:
    ``gated`` is the number of MAC slots of one filter whose ifmap operand is zero;
    :meth:`interior` the zero operands among the slots that are neither the first nor the last
    of an output when channels are processed in chunks of ``q`` (those decide psum-spad
    accesses); :meth:`issued` the slots a zero-skipping PE issues.
    """

    def __init__(self, layer, ifmap=None, zero_fraction=0.0):
        U, S, F = layer.stride, layer.S, layer.F
        zp = zero_probability(layer, ifmap, zero_fraction)
        mult = np.zeros(layer.Hp)
        for i in range(layer.R):
            mult[i + U * np.arange(layer.E)] += 1     # (output row, filter row) pairs per row
        cols = np.arange(F)[:, None] * U + np.arange(S)[None, :]           # (F, S)
        rows = zp.sum(axis=0)                                               # (C, Hp, Wp)
        self.per_channel = np.einsum("chf,h->c", rows[:, :, cols].sum(axis=-1), mult)
        self.first = np.einsum("chf,h->c", rows[:, :, cols[:, 0]], mult)
        self.last = np.einsum("chf,h->c", rows[:, :, cols[:, -1]], mult)
        self.gated = float(self.per_channel.sum())
        self.exact = ifmap is not None
        self._layer = layer
        self._interior = {}
        self._issued = {}
        self._zp, self._cols, self._mult = zp, cols, mult
        #: MAC slots of one filter over every channel (``gated`` of a layer of zeros)
        self.slots = float(layer.N * mult.sum() * F * S * layer.C)

    def issued(self, q):
        """Slots of one filter (over all groups' channels) that a zero-skipping PE issues with
        channels in chunks of ``q``: per output window (``q`` channels by ``S`` taps) the
        non-zero operands, or one slot for a window of zeros; an expectation for i.i.d. zeros.
        """
        if q not in self._issued:
            layer = self._layer
            cg = layer.C // layer.groups
            total = 0.0
            for g in range(layer.groups):
                for c0 in range(0, cg, q):
                    lo = g * cg + c0
                    win = self._zp[:, lo:lo + min(q, cg - c0)][:, :, :, self._cols]
                    nonzero = (1.0 - win).sum(axis=(1, 4))            # (N, Hp, F)
                    all_zero = win.prod(axis=(1, 4))
                    total += float(np.einsum("nhf,h->", nonzero + all_zero, self._mult))
            self._issued[q] = total
        return self._issued[q]

    def interior(self, q):
        if q not in self._interior:
            layer = self._layer
            cg, S = layer.C // layer.groups, layer.S
            total = 0.0
            for g in range(layer.groups):
                for c0 in range(0, cg, q):
                    qq = min(q, cg - c0)
                    lo = g * cg + c0
                    if S * qq >= 2:
                        total += (self.per_channel[lo:lo + qq].sum() - self.first[lo]
                                  - self.last[lo + qq - 1])
            self._interior[q] = float(total)
        return self._interior[q]


def load_transfer_cycles(config, rows, pqs):
    """Cycles a LOAD pass moves filters in: ``rows`` PE rows of ``pqs`` values each, from the
    first transfer to the last value written into a spad.

    With ``g = filter_group`` values a transfer, the rows take turns and a PE takes its next
    transfer in the cycle it writes the last value of the one it holds (``g`` cycles after
    taking it), so transfer ``k`` goes at ``max(A(k-1) + 1, A(k-rows) + g)``: a transfer a
    cycle when ``rows >= g``, else ``g`` cycles per round of ``rows``. The last transfer's
    ``pqs - (n-1)*g`` values follow it, one a cycle.
    """
    g = config.filter_group
    if g == 1:
        return rows * pqs
    per_row = -(-pqs // g)
    if rows >= g:
        last = rows * per_row - 1
    else:
        last = (per_row - 1) * g + rows - 1
    return last + 1 + pqs - (per_row - 1) * g


def pass_cycles(config, layer, shape, issue_fraction=1.0):
    """Estimated cycles of one LOAD pass and one RUN pass of ``shape`` with no stream stalls.

    LOAD: its command words, two cycles per descriptor, then the filter transfers
    (:func:`load_transfer_cycles`). RUN:
    its command words, then the slowest of the PE compute of one row chain (``nn*F`` outputs
    of ``p*q*S`` MAC slots, plus a few cycles per chain PE), the ifmap network (one value per
    cycle), the psum network and the output network (one group of ``psum_group`` psums per
    cycle each), plus the
    pipeline's fill and drain. ``issue_fraction`` is the share of MAC slots a zero-skipping PE
    issues (the layer's average; 1 without skipping).

    This is the fast estimate the mapper ranks with. It misses the couplings between PEs (a
    multicast value waits for its slowest destination): against the exact model
    (:func:`exact_run_cycles`) it is within a few percent on AlexNet's CONV layers, and
    25 % low to 20 % high on small layers.
    """
    R, S, U, F = layer.R, layer.S, layer.stride, layer.F
    nn, ee, t, p, q, r = shape.nn, shape.ee, shape.t, shape.p, shape.q, shape.r
    # (+ 3: the last value's write, the array's registered busy, leaving PASS_WAIT)
    load = _LOAD_PASS_WORDS + 2 * 2 + 1 + load_transfer_cycles(config, t * r * R, p * q * S) + 3
    row_len = (F - 1) * U + S
    slots = p * q * S
    ifmap = nn * r * q * row_len * (shape.rows_in if U < R else R * ee)
    psum = t * -(-p // config.psum_group) * ee * F * nn
    compute = math.ceil(nn * F * slots * issue_fraction) + (r * R - 1) * 4
    run = _RUN_PASS_WORDS + 2 * 4 + 1 + max(compute, ifmap, psum) + 14
    return load, run, {"compute": compute, "ifmap": ifmap, "psum": psum}


def _fused_extra(config, layer, shape):
    """Estimated cycles a RUN pass of ``shape`` takes more when it loads its filters too: the
    filter nest's words, and the part of the filter transfers (:func:`load_transfer_cycles`)
    longer than the ifmap stream's start (until the last ifmap row of the pass has its
    first window)."""
    R, S = layer.R, layer.S
    streams = shape.r * (shape.rows_in if layer.stride < R else R * shape.ee)
    start = streams * shape.q * S
    load = load_transfer_cycles(config, shape.t * shape.r * R, shape.p * shape.q * S)
    return NEST_WORDS + 2 + max(0, load - start)


def _fused_filt_idle(config, layer, shape):
    """Estimated cycle (from its PASS header) a RUN pass that loads its filters too has read
    them all: the filter nest's push, then :func:`load_transfer_cycles`."""
    return 5 + NEST_WORDS + load_transfer_cycles(config, shape.t * shape.r * layer.R,
                                                 shape.p * shape.q * layer.S)


def _run_pass_saving(run, filt_idle, iwrite, fwrite):
    """Cycles a detached RUN pass of ``run`` cycles saves beside the WRITEs after it: the
    next chunk's ifmap WRITE (``iwrite`` cycles, 0 if none), then its filter WRITE
    (``fwrite``). ``filt_idle`` is None, or for a pass that loads its filters too the cycle
    its filter reader is idle: the filter WRITE's words wait for it (they go into the filter
    banks), after the pass's longer decoding, the ifmap WRITE and the filter WRITE header."""
    if filt_idle is None:
        return detached_saving(run, _RUN_PASS_DECODE, iwrite + fwrite)
    wait = max(0, filt_idle - (_FUSED_PASS_DECODE + iwrite + 1)) if fwrite else 0
    return detached_saving(run, _FUSED_PASS_DECODE, iwrite + fwrite + wait)


def _cycles_per_words(words, per_cycle):
    """Cycles the decoder spends on a command of ``words`` stream words (one more to leave)."""
    return math.ceil(words / per_cycle) + 1


def block_classes(layer, mapping):
    """The blocks of :func:`~rsaccel.gen.compiler.iter_blocks` counted by shape.

    Returns ``({(nn, ee, t, p): count}, filters, config_writes)``: ``filters`` is ``t*p``
    summed over the filter blocks of one group (filters padded to whole blocks included) and
    ``config_writes`` the number of array configurations the compiler emits (one whenever a
    block's ``(t, ee)`` differs from the block before).
    """
    mg = layer.M // layer.groups

    mblocks = []
    for rem, count in run_sizes(mg, mapping.p * mapping.t):
        mblocks.append((filter_block_shape(mapping, rem), count))
    filters = sum(t * p * count for (t, p), count in mblocks)
    changes = sum(1 for (a, _), (b, _) in zip(mblocks, mblocks[1:]) if a[0] != b[0])
    classes = {}
    config_writes = 0
    configured = None
    for _ in range(layer.groups):
        for nn, ncount in run_sizes(layer.N, mapping.n):
            for (t, p), count in mblocks:
                for ee, ecount in run_sizes(layer.E, mapping.e):
                    key = (nn, ee, t, p)
                    classes[key] = classes.get(key, 0) + count * ncount * ecount
            for _ in range(ncount):          # image runs, each sweeping every strip
                for ee, ecount in run_sizes(layer.E, mapping.e):
                    # the filter-block sequence repeats once per strip of this size
                    head, tail = (mblocks[0][0][0], ee), (mblocks[-1][0][0], ee)
                    config_writes += (head != configured) + changes
                    config_writes += (ecount - 1) * ((head != tail) + changes)
                    configured = tail
    return classes, filters, config_writes


#: Cycles a WRITE_RLC / READ_RLC command costs beyond its words or its buffer words (header,
#: count word, pipeline start and end, and the decoder's fragments cut short when its held
#: words run out, which depends on the data). Estimates, fitted to the RTL on the RLC test
#: layers (tiny, no stalls): the layers' cycles then come out within 0.6 % of the RTL's.
_RLC_IN_COMMAND_CYCLES = 6
_RLC_OUT_COMMAND_CYCLES = 7


def rlc_words_expected(values, zero_fraction, config):
    """Expected RLC words for ``values`` i.i.d. values that are zero with ``zero_fraction``.

    A pair closes at each non-zero value and at every ``K = 2**run_width``-th zero of a run, so
    the pairs per value are ``(1 - z) / (1 - z**K)`` (``1/K`` when ``z = 1``), plus the pair
    the last value always closes.
    """
    k = 1 << config.rlc_run_width
    z = min(max(float(zero_fraction), 0.0), 1.0)
    per_value = 1.0 / k if z >= 1.0 else (1.0 - z) / (1.0 - z ** k)
    pairs = values * per_value + 1
    return max(1, math.ceil(pairs / config.rlc_pairs_per_word))


def rlc_stream(config, layer, mapping, *, ifmap=None, ofmap=None, zero_fraction=0.0,
               ofmap_zero_fraction=None, double_ifmap=True, reuse_rows=True):
    """Coded stream words of a layer compiled with ``rlc_in`` and ``rlc_out``.

    Walks the compiler's blocks and chunks. The ifmap words are exact when ``ifmap`` (N, C, H,
    W) is given, the ofmap words when ``ofmap`` (N, M, E, F, after requantisation) is given;
    otherwise :func:`rlc_words_expected` with ``zero_fraction`` (padding counted as zeros) or
    ``ofmap_zero_fraction`` (default ``zero_fraction``).

    Returns a dict: ``in_words`` (coded ifmap words), ``in_values`` and ``in_commands``
    (WRITE_RLC commands), ``in_cycles`` (the decoder's cycles at one stream word a cycle:
    per command, its words or the buffer words it fills, whichever is more), ``out_cycles``
    (the same for the encoder: per command, the buffer words it reads or the words it sends), ``out_words``, ``out_values``, ``out_commands`` (READ_RLC commands)
    and ``out_reads`` (buffer words the READ_RLCs read); ``in_jobs`` lists ``(block, q,
    words, cycles)`` for each pass in stream order (words and cycles 0 where its rows are
    reused and no WRITE_RLC is sent; ``double_ifmap`` and ``reuse_rows`` as for the
    compiler).
    """
    from .rlc import encode
    c = config
    fmt = dict(run_width=c.rlc_run_width, level_width=c.rlc_level_width,
               word_width=c.stream_width)
    U, F, lanes = layer.stride, layer.F, c.lanes
    cg, mg = layer.C // layer.groups, layer.M // layer.groups
    ofz = zero_fraction if ofmap_zero_fraction is None else ofmap_zero_fraction
    padded = None
    if ifmap is not None:
        padded = np.pad(np.asarray(ifmap, dtype=np.int64),
                        ((0, 0), (0, 0), (layer.pad, layer.pad), (layer.pad, layer.pad)))
    elif zero_fraction:
        # padding is always zero: the zero fraction of the padded planes
        inner = layer.H * layer.W
        zero_fraction = 1 - (1 - zero_fraction) * inner / (layer.Hp * layer.Wp)
    out = dict.fromkeys(("in_words", "in_values", "in_commands", "in_cycles", "out_words",
                         "out_values", "out_commands", "out_reads", "out_cycles"), 0)
    out["in_jobs"] = []
    cache = {}
    r = mapping.r
    for cp in iter_passes(c, layer, mapping, double_ifmap=double_ifmap, reuse_rows=reuse_rows):
        blk, c0, q = cp.blk, cp.c0, cp.q
        g, n0, nn, e0, ee, rows_in, m0, t, p = blk[:9]
        if cp.reused:
            out["in_jobs"].append((blk, q, 0, 0))
        else:
            n = nn * r * q * rows_in * layer.Wp
            key = (g, n0, e0, c0, q, rows_in)
            if key not in cache:
                if padded is None:
                    cache[key] = rlc_words_expected(n, zero_fraction, c)
                else:
                    block = padded[n0:n0 + nn, g * cg + c0:g * cg + c0 + r * q,
                                   e0 * U:e0 * U + rows_in, :]
                    cache[key] = len(encode(block.reshape(-1), **fmt))
            out["in_words"] += cache[key]
            out["in_values"] += n
            out["in_commands"] += 1
            # the decoder fills a buffer word a cycle unless its stream words run out first
            job_cycles = max(cache[key], -(-n // lanes))
            out["in_cycles"] += job_cycles
            out["in_jobs"].append((blk, q, cache[key], job_cycles))
        if cp.ci + 1 < cp.chunks:
            continue
        lay = block_layout(c, layer, blk)
        pp = padded_p(c, p)
        for v in range(t):
            n = ee * nn * F * pp
            first = lay.out_word * lanes + set_offset(c, layer, blk, lay, v)
            reads = (first + n - 1) // lanes - first // lanes + 1
            out["out_reads"] += reads
            out["out_values"] += n
            out["out_commands"] += 1
            if ofmap is None:
                words = rlc_words_expected(n, ofz, c)
                out["out_words"] += words
                out["out_cycles"] += max(reads, words)
                continue
            # element order of a set's outputs: strip row, image, column, filter
            vals = np.zeros((ee, nn, F, pp), dtype=np.int64)
            for k in range(p):
                m = m0 + v * p + k
                if m < mg:
                    plane = np.asarray(ofmap)[n0:n0 + nn, g * mg + m, e0:e0 + ee, :]
                    vals[:, :, :, k] = plane.transpose(1, 0, 2)
            words = len(encode(vals.reshape(-1), **fmt))
            out["out_words"] += words
            # the encoder takes a buffer word a cycle unless its words leave slower
            out["out_cycles"] += max(reads, words)
    return out


def model_layer(config, layer, mapping, *, ifmap=None, zero_fraction=0.0, costs=None,
                stream_words_per_cycle=1.0, zeros=None, rlc_in=False, rlc_out=False,
                ofmap=None, ofmap_zero_fraction=None, cycle_model="exact", pass_cache=None,
                overlap=True, double_ifmap=True, reuse_rows=True, detach_reads=True,
                fuse_loads=True):
    """Model ``layer`` on ``config`` under ``mapping``; returns a :class:`LayerModel`.

    ``ifmap`` (N, C, H, W) makes the data-dependent counts exact; otherwise ``zero_fraction`` is
    the expected fraction of zero ifmap values. ``stream_words_per_cycle`` is the input stream's
    bandwidth in 64-bit words per cycle (1 is a stream that never stalls). ``zeros`` (a
    :class:`ZeroStats` of this layer) replaces ``ifmap`` and ``zero_fraction`` when many
    mappings of one layer are scored. ``rlc_in`` / ``rlc_out`` model the ifmap and ofmap
    streams run-length coded (see :func:`rlc_stream`; ``ofmap`` makes the ofmap words exact).

    ``cycle_model`` decides how RUN passes are timed: ``"exact"`` steps each distinct pass
    cycle by cycle (:func:`exact_run_cycles`, milliseconds to seconds per distinct pass;
    ``pass_cache`` shares them between calls), ``"estimate"`` takes each pass's bottleneck
    (:func:`pass_cycles`, microseconds; what the mapper ranks with). Zero skipping is always
    estimated (its issue order depends on the data). Everything else is costed exactly either
    way, so with a stream that never stalls the exact model's cycles equal the RTL's. With
    buffer-reader or output FIFOs shallower than :data:`EXACT_MIN_FIFO_DEPTH` entries
    (``reader_fifo_depth``, ``output_fifo_depth``) the RUN passes still follow the readers'
    depth, but the LOAD passes and READs are costed at the full rate of deeper FIFOs, so the
    cycles come out low (in the tests, below the RTL's); the result's ``cycle_model`` then says
    ``"estimate"``. The mapper's estimate (:func:`pass_cycles`) assumes full-rate readers too.

    ``overlap`` models the stream :func:`~rsaccel.gen.compiler.compile_layer` emits with the
    same argument: detached passes, so the ifmap WRITE (or WRITE_RLC) of a chunk runs beside
    its LOAD pass and the next chunk's filter WRITE beside its RUN pass; with
    ``double_ifmap`` too, a block with room for two ifmap regions
    (:func:`~rsaccel.gen.compiler.ifmap_regions`) sends each later chunk's ifmap WRITE beside
    the previous RUN pass instead. ``cycle_parts`` then has ``overlap``, the cycles so hidden
    (negative); ``stream``, ``load`` and ``run`` are as if nothing overlapped. ``reuse_rows``
    as for the compiler: blocks that start from the rows the block before left in the buffer
    (:func:`~rsaccel.gen.compiler.iter_passes`) send one chunk's rows fewer. ``detach_reads``
    (with ``overlap``, without RLC): the output READs the compiler detaches
    (:func:`~rsaccel.gen.compiler.read_beside_next`) are costed beside what follows them.
    ``fuse_loads`` (with two ifmap regions): the chunks the compiler gives no LOAD pass of
    their own (:func:`~rsaccel.gen.compiler.fuses_load`) load their filters in their RUN pass.
    """
    if cycle_model not in CYCLE_MODELS:
        raise ValueError(f"cycle_model must be one of {', '.join(CYCLE_MODELS)}, "
                         f"not {cycle_model!r}")
    problem = channel_set_problem(layer, mapping)
    if problem:
        raise LayerError(f"Mapping {mapping}: {problem}")
    c = config
    costs = costs or EnergyCosts()
    if stream_words_per_cycle <= 0:
        raise ValueError(f"stream_words_per_cycle must be positive, not {stream_words_per_cycle}")
    R, S, U, F = layer.R, layer.S, layer.stride, layer.F
    ppw = c.lanes // c.psum_lanes
    row_len = (F - 1) * U + S
    needed_positions = sum(1 for x in range(row_len) if x % U < S)
    counts = dict.fromkeys(COUNT_NAMES, 0)
    dram = {"command": 0, "filter": 0, "ifmap": 0, "bias": 0, "ofmap": 0, "sync": 0}
    parts = {"stream": 0, "load": 0, "run": 0, "overlap": 0}
    passes = 0
    slots = 0
    windows_total = 0
    shape_cycles = {}
    zeros = zeros if zeros is not None else ZeroStats(layer, ifmap, zero_fraction)
    issue_fraction = (zeros.issued(mapping.q) / zeros.slots
                      if c.zero_skipping and zeros.slots else 1.0)
    r = mapping.r
    full, rest = divmod(layer.C // layer.groups, r * mapping.q)   # rest only when r = 1
    chunk_sizes = {mapping.q: full} if full else {}
    if rest:
        chunk_sizes[rest] = 1
    # a block's RUN passes each followed by the next chunk's filter WRITE (None: by the READ)
    chunk_list = [q for _, q in iter_chunks(layer, mapping)]
    run_followers = {}
    for i, q in enumerate(chunk_list):
        key = (q, chunk_list[i + 1] if i + 1 < len(chunk_list) else None, i == 0)
        run_followers[key] = run_followers.get(key, 0) + 1
    used_model = "estimate" if c.zero_skipping else cycle_model
    shallow_fifos = min(c.reader_fifo_depth, c.output_fifo_depth) < EXACT_MIN_FIFO_DEPTH
    double_cache = {}

    def early_ifmap(blk):
        """Whether ``blk``'s later chunks write their ifmap rows beside the previous RUN."""
        key = (blk.nn, blk.ee, blk.rows_in, blk.t, blk.p)
        if key not in double_cache:
            double_cache[key] = (overlap and double_ifmap and len(ifmap_regions(
                c, layer, blk)) > 1)
        return double_cache[key]

    def fused_chunks(blk):
        """Whether ``blk``'s chunks after the first load their filters in their RUN pass."""
        return can_fuse_loads(c, fuse_loads) and early_ifmap(blk)

    def ifmap_write_cycles(blk, q):
        return _cycles_per_words(1 + ifmap_chunk_words(c, layer, blk.nn, blk.r, q, blk.rows_in),
                                 stream_words_per_cycle)
    classes, filters_blocked, config_writes = block_classes(layer, mapping)
    # blocks of each class whose first chunk's rows are not sent
    reused = reused_blocks(c, layer, mapping, double_ifmap=overlap and double_ifmap,
                           reuse_rows=reuse_rows)
    cfg_words = _config_words(c)
    dram["command"] += config_writes * cfg_words
    parts["stream"] += config_writes * _cycles_per_words(cfg_words, stream_words_per_cycle)
    for (nn, ee, t, p), mult in classes.items():
        rows_in = (ee - 1) * U + R
        pes = t * r * R * ee
        class_blk = Block(0, 0, nn, 0, ee, rows_in, 0, t, p, r, chunk_list[0],
                          set_columns(mapping, t))
        early = early_ifmap(class_blk)
        out_words = block_layout(c, layer, class_blk).out_words
        pg = -(-p // c.psum_group)          # psum transfers per output position
        bias_words = math.ceil(t * pg * c.psum_group / ppw)
        dram["command"] += mult * (1 + (not rlc_out))  # bias WRITE (and READ) headers
        dram["bias"] += mult * bias_words
        counts["glb_host_writes"] += mult * bias_words
        parts["stream"] += mult * _cycles_per_words(1 + bias_words, stream_words_per_cycle)
        if not rlc_out:
            dram["ofmap"] += mult * out_words
            counts["glb_host_reads"] += mult * out_words
            parts["stream"] += mult * (out_words + 3)
        for q, nchunks in chunk_sizes.items():
            k = mult * nchunks
            # chunks whose rows are sent (reuse only where all chunks have one q)
            sent = k - (reused.get((nn, ee, t, p), 0) if q == chunk_list[0] else 0)
            fwords = _filter_words(c, layer, t, p, r, q)
            iwords = ifmap_chunk_words(c, layer, nn, r, q, rows_in)
            # WRITE headers: one per filter bank the filters stripe over, one for the ifmap
            # chunks that load their filters in their RUN pass: no LOAD pass header or command
            fused = (k - mult if q == chunk_list[0] else k) if fused_chunks(class_blk) else 0
            dram["command"] += (k * (c.filter_words + _LOAD_PASS_WORDS + _RUN_PASS_WORDS) + sent
                                - fused * (_LOAD_PASS_WORDS - NEST_WORDS))
            dram["filter"] += k * fwords
            counts["glb_host_writes"] += k * fwords + sent * iwords
            parts["stream"] += k * _filter_write_cycles(c, layer, t, p, r, q,
                                                        stream_words_per_cycle)
            if not rlc_in:
                dram["ifmap"] += sent * iwords
                parts["stream"] += sent * _cycles_per_words(1 + iwords, stream_words_per_cycle)
            # PE accesses of this LOAD + RUN pair
            counts["filter_spad_writes"] += k * pes * p * q * S
            counts["ifmap_spad_writes"] += k * pes * nn * q * needed_positions
            slots += k * pes * nn * F * S * q * p
            windows_total += k * pes * nn * F * p      # output windows of each filter slot
            counts["psum_spad_reads"] += k * pes * nn * F * p * max(0, S * q - 1)
            # network transfers (each one a global-buffer read or write)
            counts["noc_filter_transfers"] += k * t * r * R * -(-(p * q * S) // c.filter_group)
            counts["noc_ifmap_transfers"] += k * nn * r * q * row_len * (rows_in if U < R
                                                                         else R * ee)
            counts["noc_psum_transfers"] += k * t * pg * ee * F * nn
            counts["noc_output_transfers"] += k * t * pg * ee * F * nn
            shape = PassShape(nn=nn, ee=ee, t=t, p=p, q=q, rows_in=rows_in, r=r)
            if shape not in shape_cycles:
                shape_cycles[shape] = pass_cycles(c, layer, shape, issue_fraction)
            load, run, _ = shape_cycles[shape]
            parts["load"] += (k - fused) * load
            parts["run"] += k * run + fused * _fused_extra(c, layer, shape)
            passes += k
            if overlap and not rlc_in:
                # the ifmap WRITE runs beside the LOAD pass (WRITE_RLCs: below); with two
                # ifmap regions only the first chunk's does, and the other LOADs are
                # followed by their RUN at once
                beside_load = (mult if q == chunk_list[0] else 0) if early else k
                beside_load -= k - sent
                parts["overlap"] -= beside_load * detached_saving(
                    load, _LOAD_PASS_DECODE, _cycles_per_words(1 + iwords, stream_words_per_cycle))
                parts["overlap"] -= (k - fused - beside_load) * detached_saving(
                    load, _LOAD_PASS_DECODE, 0)
        if overlap and used_model == "estimate" and not rlc_in:
            # each RUN pass beside the next chunk's filter WRITE, and with two ifmap regions
            # its ifmap WRITE too (estimated RUN passes; WRITE_RLCs: below)
            for (q, q_next, first), per_block in run_followers.items():
                shape = PassShape(nn=nn, ee=ee, t=t, p=p, q=q, rows_in=rows_in, r=r)
                run, filt_idle = shape_cycles[shape][1], None
                if fused_chunks(class_blk) and not first:
                    run += _fused_extra(c, layer, shape)
                    filt_idle = _fused_filt_idle(c, layer, shape)
                fwrite = _filter_write_cycles(c, layer, t, p, r, q_next, stream_words_per_cycle)
                iwrite = ifmap_write_cycles(class_blk, q_next) if early and q_next else 0
                parts["overlap"] -= mult * per_block * _run_pass_saving(run, filt_idle, iwrite,
                                                                        fwrite)
    rlc_writes = []        # each WRITE_RLC's cycles, in stream order (one per pass)
    if rlc_in or rlc_out:
        coded = rlc_stream(c, layer, mapping, ifmap=ifmap, ofmap=ofmap,
                           zero_fraction=zero_fraction, ofmap_zero_fraction=ofmap_zero_fraction,
                           double_ifmap=overlap and double_ifmap, reuse_rows=reuse_rows)
        if rlc_in:
            # the decoder fills a buffer word a cycle, or waits for the stream
            dram["command"] += coded["in_commands"]          # the count word of each
            dram["ifmap"] += coded["in_words"]
            parts["stream"] += max(coded["in_cycles"],
                                   math.ceil(coded["in_words"] / stream_words_per_cycle))
            parts["stream"] += coded["in_commands"] * _RLC_IN_COMMAND_CYCLES
            if overlap:
                # each WRITE_RLC runs beside its chunk's LOAD pass, or, with two ifmap
                # regions and after a block's first chunk, beside the previous RUN pass
                # (costed with the RUN passes below)
                chunk = 0
                for blk, q, words, job_cycles in coded["in_jobs"]:
                    write = (max(job_cycles, math.ceil(words / stream_words_per_cycle))
                             + _RLC_IN_COMMAND_CYCLES) if words else 0      # 0: rows reused
                    rlc_writes.append(write)
                    load = shape_cycles[PassShape(nn=blk.nn, ee=blk.ee, t=blk.t, p=blk.p, q=q,
                                                  rows_in=blk.rows_in, r=blk.r)][0]
                    if not (fused_chunks(blk) and chunk):     # (no LOAD pass of its own)
                        parts["overlap"] -= detached_saving(
                            load, _LOAD_PASS_DECODE, 0 if early_ifmap(blk) and chunk else write)
                    chunk = (chunk + 1) % len(chunk_list)
        if rlc_out:
            dram["command"] += coded["out_commands"]
            dram["ofmap"] += coded["out_words"]
            counts["glb_host_reads"] += coded["out_reads"]
            # the output stream is taken as never stalling, as for a plain READ
            parts["stream"] += (coded["out_cycles"]
                                + coded["out_commands"] * _RLC_OUT_COMMAND_CYCLES)
    dram["command"] += 1
    dram["sync"] += 1
    counts["words_in"] = sum(v for k, v in dram.items() if k not in ("ofmap", "sync"))
    counts["words_out"] = dram["ofmap"] + dram["sync"]

    # data-dependent counts: every filter slot of a block sees the same ifmap operands
    gated_total = zeros.gated * filters_blocked
    interior_total = zeros.interior(mapping.q) * filters_blocked
    counts["gated_macs"] = gated_total if c.zero_gating else 0
    counts["macs"] = slots - counts["gated_macs"]
    counts["filter_spad_reads"] = counts["macs"]
    counts["ifmap_spad_reads"] = slots
    if c.zero_skipping:
        # only issued slots touch the ifmap and psum spads; per window the first issued one
        # does not read the psum spad, the last does not write it
        issued_total = zeros.issued(mapping.q) * filters_blocked
        counts["ifmap_spad_reads"] = issued_total
        counts["psum_spad_reads"] = issued_total - windows_total
    elif c.zero_gating:
        counts["psum_spad_reads"] -= interior_total
    counts["psum_spad_writes"] = counts["psum_spad_reads"]
    counts["glb_filter_reads"] = counts["noc_filter_transfers"]
    counts["glb_ifmap_reads"] = counts["noc_ifmap_transfers"]
    counts["glb_psum_reads"] = counts["noc_psum_transfers"]
    counts["glb_output_writes"] = counts["noc_output_transfers"]
    if zeros.exact:
        counts = {k: int(round(v)) for k, v in counts.items()}

    runs = []    # (block, q of the next chunk or None, cycles, filt_idle) of every RUN pass
    if used_model == "exact":
        parts["run"], _ = exact_run_cycles(c, layer, mapping, cache=pass_cache, passes=runs,
                                           double_ifmap=overlap and double_ifmap,
                                           reuse_rows=reuse_rows, fuse_loads=fuse_loads)
    elif overlap and rlc_in:
        for blk in iter_blocks(layer, mapping):
            for ci, q in enumerate(chunk_list):
                shape = PassShape(nn=blk.nn, ee=blk.ee, t=blk.t, p=blk.p, q=q,
                                  rows_in=blk.rows_in, r=blk.r)
                fused = bool(ci) and fused_chunks(blk)
                runs.append((blk, chunk_list[ci + 1] if ci + 1 < len(chunk_list) else None,
                             shape_cycles[shape][1]
                             + (_fused_extra(c, layer, shape) if fused else 0),
                             _fused_filt_idle(c, layer, shape) if fused else None))
    if overlap:
        # each RUN pass beside the next chunk's filter WRITE, and with two ifmap regions its
        # ifmap WRITE (or WRITE_RLC) too
        for i, (blk, q_next, run, filt_idle) in enumerate(runs):
            fwrite = _filter_write_cycles(c, layer, blk.t, blk.p, blk.r, q_next,
                                          stream_words_per_cycle)
            iwrite = 0
            if early_ifmap(blk) and q_next is not None:
                iwrite = rlc_writes[i + 1] if rlc_in else ifmap_write_cycles(blk, q_next)
            parts["overlap"] -= _run_pass_saving(run, filt_idle, iwrite, fwrite)
    if overlap and detach_reads and not rlc_in and not rlc_out:
        parts["overlap"] -= _read_overlap(c, layer, mapping, shape_cycles, used_model == "exact",
                                          stream_words_per_cycle, double_ifmap, reuse_rows,
                                          issue_fraction, classes, reused)
    cycles = sum(parts.values()) + 1
    result = LayerModel(layer=layer, mapping=mapping, counts=counts, dram_words=dram,
                        cycles=int(cycles), cycle_parts=parts, passes=passes,
                        cycle_model="estimate" if shallow_fifos else used_model)
    # global-buffer fills and drains in values: coded streams still move every value
    values = {"filter": dram["filter"] * c.lanes, "ifmap": dram["ifmap"] * c.lanes,
              "psum": (dram["bias"] + dram["ofmap"]) * c.lanes}
    if rlc_in:
        values["ifmap"] = coded["in_values"]
    if rlc_out:
        values["psum"] = dram["bias"] * c.lanes + coded["out_values"]
    result.energy = energy_breakdown(config, counts, dram, costs, glb_values=values)
    return result


def _config_words(config):
    """Stream words of a CONFIG that writes every PE's IDs and mode (header included)."""
    return 1 + config.rows * (3 + 4 * config.cols)


def _read_overlap(c, layer, mapping, shape_cycles, exact, words_per_cycle, double_ifmap,
                  reuse_rows, issue_fraction, classes, reused):
    """Cycles the detached output READs save (see :func:`~rsaccel.gen.compiler.
    read_beside_next`): each runs beside the next block's bias and filter WRITEs, its first
    LOAD pass and the ifmap WRITE beside that, and the RUN pass after them starts when both
    are done. ``exact`` walks every block in stream order; otherwise each class of blocks is
    taken to follow one of its own class (one READ per class not detached, no CONFIG),
    which the mapper's ranking needs no better than that."""
    ppw = c.lanes // c.psum_lanes

    def start_cycles(blk, q, reused_rows):
        # from the first header after the READ to the first cycle the RUN pass may start
        load = shape_cycles.get(PassShape(nn=blk.nn, ee=blk.ee, t=blk.t, p=blk.p, q=q,
                                          rows_in=blk.rows_in, r=blk.r))
        if load is None:
            load = pass_cycles(c, layer, PassShape(nn=blk.nn, ee=blk.ee, t=blk.t, p=blk.p, q=q,
                                                   rows_in=blk.rows_in, r=blk.r),
                               issue_fraction)
        bias = _cycles_per_words(1 + math.ceil(blk.t * padded_p(c, blk.p) / ppw),
                                 words_per_cycle)
        filt = _filter_write_cycles(c, layer, blk.t, blk.p, blk.r, q, words_per_cycle)
        ifmap = 0 if reused_rows else _cycles_per_words(
            1 + ifmap_chunk_words(c, layer, blk.nn, blk.r, q, blk.rows_in), words_per_cycle)
        return bias + filt + max(_LOAD_PASS_DECODE + ifmap, load[0] - 1)

    saved = 0
    if exact:
        prev = None
        for cp in iter_passes(c, layer, mapping, double_ifmap=double_ifmap,
                              reuse_rows=reuse_rows):
            if cp.ci != 0:
                continue
            if prev is not None and read_beside_next(c, layer, prev, cp):
                read = block_layout(c, layer, prev).out_words + 3
                start = start_cycles(cp.blk, cp.q, cp.reused)
                if (prev.t, prev.ee) != (cp.blk.t, cp.blk.ee):
                    start += _cycles_per_words(_config_words(c), words_per_cycle)
                saved += detached_saving(read, 1, start)
            prev = cp.blk
        return saved
    q = next(iter_chunks(layer, mapping))[1]
    for (nn, ee, t, p), mult in classes.items():
        blk = Block(0, 0, nn, 0, ee, (ee - 1) * layer.stride + layer.R, 0, t, p, mapping.r, q,
                    set_columns(mapping, t))
        read = block_layout(c, layer, blk).out_words + 3
        detached = mult - 1
        again = min(reused.get((nn, ee, t, p), 0), detached)
        saved += again * detached_saving(read, 1, start_cycles(blk, q, True))
        saved += (detached - again) * detached_saving(read, 1, start_cycles(blk, q, False))
    return saved


def energy_breakdown(config, counts, dram, costs, glb_values=None):
    """Energy per level and data type (units of one MAC) from access counts.

    ``glb_values`` (per ``filter``, ``ifmap``, ``psum``) are the values the stream writes into
    or reads out of the global buffer; by default the stream words times the lanes. A psum
    transfer or psum buffer access moves ``psum_group`` values (pad values included) and costs
    as many accesses; a filter transfer (one filter buffer read) ``filter_group`` values.
    """
    lanes, g, fg = config.lanes, config.psum_group, config.filter_group
    k = counts
    fill = glb_values or {"filter": dram["filter"] * lanes, "ifmap": dram["ifmap"] * lanes,
                          "psum": (dram["bias"] + dram["ofmap"]) * lanes}
    return {
        "mac": {"mac": costs.mac * k["macs"]},
        "spad": {
            "filter": costs.spad * (k["filter_spad_reads"] + k["filter_spad_writes"]),
            "ifmap": costs.spad * (k["ifmap_spad_reads"] + k["ifmap_spad_writes"]),
            "psum": costs.spad * (k["psum_spad_reads"] + k["psum_spad_writes"]),
        },
        "array": {
            "filter": costs.array * fg * k["noc_filter_transfers"],
            "ifmap": costs.array * k["noc_ifmap_transfers"],
            "psum": costs.array * g * (k["noc_psum_transfers"] + k["noc_output_transfers"]),
        },
        "glb": {
            "filter": costs.glb * (fg * k["glb_filter_reads"] + fill["filter"]),
            "ifmap": costs.glb * (k["glb_ifmap_reads"] + fill["ifmap"]),
            "psum": costs.glb * (g * (k["glb_psum_reads"] + k["glb_output_writes"])
                                 + fill["psum"]),
        },
        "dram": {
            "filter": costs.dram * dram["filter"] * lanes,
            "ifmap": costs.dram * dram["ifmap"] * lanes,
            "psum": costs.dram * (dram["bias"] + dram["ofmap"]) * lanes,
            "command": costs.dram * (dram["command"] + dram["sync"]) * lanes,
        },
    }


def _filter_words(config, layer, t, p, r, q):
    """Buffer words of the filters of a chunk of ``q`` channels per set."""
    return math.ceil(t * r * layer.R * filter_row_elements(config, layer.S * q * p)
                     / config.lanes)


def _filter_write_cycles(config, layer, t, p, r, q, stream_words_per_cycle):
    """Cycles of the filter WRITEs of a chunk of ``q`` channels per set (0 for ``q=None``):
    one WRITE, or one per filter bank when a transfer stripes over several."""
    if q is None:
        return 0
    kw = config.filter_words
    return kw * _cycles_per_words(1 + _filter_words(config, layer, t, p, r, q) // kw,
                                  stream_words_per_cycle)


def exact_run_cycles(config, layer, mapping, cache=None, passes=None, double_ifmap=True,
                     reuse_rows=True, fuse_loads=True):
    """Cycles of every RUN pass of ``layer`` under ``mapping``, each stepped cycle by cycle
    (:func:`~rsaccel.sim.pass_timing.run_pass_cycles`) in stream order, carrying the output
    network's round-robin pointer from pass to pass. Distinct passes are simulated once
    (``cache``, a dict, may be shared between calls, of any layers and configurations).
    Returns ``(total, passes_simulated)``. The output network's pointer starts at 0 (reset).
    ``passes``, a list, gets ``(block, q of the next chunk or None, cycles, filt_idle)`` for
    each pass: ``filt_idle`` is None, or for a pass that loads its filters too
    (:func:`~rsaccel.gen.compiler.fuses_load`) the cycle its filter reader is idle again.
    With ``double_ifmap`` a block's chunks alternate between its ifmap regions as the
    compiler's do (:func:`~rsaccel.gen.compiler.ifmap_regions`; the region changes which
    banks a pass reads, so it can change its cycles); ``reuse_rows`` orders the chunks as
    the compiler's (:func:`~rsaccel.gen.compiler.iter_passes`)."""
    from .pass_timing import run_pass_cycles
    cache = {} if cache is None else cache
    total, last, simulated = 0, 0, 0
    order = list(iter_passes(config, layer, mapping, double_ifmap=double_ifmap,
                             reuse_rows=reuse_rows))
    for i, cp in enumerate(order):
        blk, q, ci, ifmap_word = cp.blk, cp.q, cp.ci, cp.ifmap_word
        fused = fuses_load(config, cp, fuse_loads)
        key = (config, layer, blk.nn, blk.ee, blk.rows_in, blk.t, blk.p, blk.r, blk.h, q,
               ci == 0, last, ifmap_word, fused)
        if key not in cache:
            program = run_pass_program(config, layer, blk, q, first_chunk=ci == 0,
                                       last_chunk=ci == cp.chunks - 1, ifmap_word=ifmap_word,
                                       load=fused)
            events = {}
            cache[key] = (*run_pass_cycles(config, layer, program, blk.t, blk.ee, last,
                                           r=blk.r, h=blk.h, events=events),
                          events["filt_idle"])
            simulated += 1
        cycles, last, filt_idle = cache[key]
        total += cycles
        if passes is not None:
            passes.append((blk, order[i + 1].q if ci + 1 < cp.chunks else None, cycles,
                           filt_idle))
    return total, simulated
