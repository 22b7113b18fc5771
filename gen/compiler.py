"""Layer compiler: maps a CNN layer onto the accelerator and emits its command/data stream.

The mapping rule is deliberately simple (the optimising mapper, :mod:`rsaccel.gen.mapper`,
searches more): one row-stationary PE set is ``R`` PE rows by ``e`` columns (``e`` output rows
of a strip); ``t`` copies of the set are stacked down the array, each holding different filters
(they share every ifmap value by multicast); a mapping may also place ``h`` of them side by
side in neighbouring column groups (``t/h`` stacked rows of ``h``). A mapping may make each of the ``t`` a stack of
``r`` sets on different channels whose psums add up through the vertical links. Each PE
interleaves ``p`` filters and ``q`` channels within its spads. Channels beyond ``r*q`` are
processed in further passes whose psums spill to the global buffer and come back through the
psum network; the first pass starts from the bias.

Numbers in the stream follow ``docs/stream-format.md``; field layouts are the hardware's.
"""

from dataclasses import dataclass, field
import math
from typing import NamedTuple

import numpy as np

from ..sim.nest_model import Nest

__all__ = ["Layer", "Mapping", "CompiledLayer", "LayerError", "plan_mapping", "compile_layer",
           "unpack_outputs", "expected_output_words", "Block", "iter_blocks", "iter_chunks",
           "buffer_split", "ifmap_chunk_words", "channel_set_problem", "batch_rows_problem",
           "BlockLayout", "block_layout", "filter_row_elements", "array_config_writes", "PassProgram",
           "load_pass_program", "run_pass_program", "ifmap_regions",
           "chunk_ifmap_word", "ChunkPass", "iter_passes", "iter_block_orders", "reused_blocks",
           "filter_blocks", "run_sizes", "read_beside_next", "set_columns", "set_offset",
           "filter_block_shape", "fuses_load", "can_fuse_loads"]

# The stream's encodings come from the hardware's own layouts and enums (one definition).
from ..hw.core import NEST_WORDS, OUTPUT_WORDS, READ_DETACH_BIT, Opcode, PassFlag
from ..hw.loop_nest import NestDescriptor
from ..hw.output_writer import OutputDescriptor
from ..hw.pe import MAX_PE_ROWS, PECommand, PEOp
from ..hw.pe_array import ArrayConfigWrite, ArrayTarget, PsumSource

PSUM_GIN, PSUM_BELOW, PSUM_ZERO = (PsumSource.GIN.value, PsumSource.BELOW.value,
                                   PsumSource.ZERO.value)


class LayerError(ValueError):
    """The configuration cannot run this layer; the message names the limit."""


@dataclass(frozen=True)
class Layer:
    """A CONV (or FC: ``R = H``, ``S = W``) layer; ``H``, ``W`` before padding."""
    N: int
    C: int
    M: int
    H: int
    W: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    relu: bool = False
    out_shift: int = 0

    @property
    def Hp(self):
        return self.H + 2 * self.pad

    @property
    def Wp(self):
        return self.W + 2 * self.pad

    @property
    def E(self):
        return (self.Hp - self.R) // self.stride + 1

    @property
    def F(self):
        return (self.Wp - self.S) // self.stride + 1

    @property
    def macs(self):
        return self.N * self.M * self.E * self.F * (self.C // self.groups) * self.R * self.S

    def validate(self):
        for name in ("N", "C", "M", "H", "W", "R", "S", "stride", "groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise LayerError(f"Layer field '{name}' must be a positive integer, not {value!r}")
        for name in ("pad", "out_shift"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise LayerError(f"Layer field '{name}' must be a non-negative integer, "
                                 f"not {value!r}")
        if not isinstance(self.relu, bool):
            raise LayerError(f"Layer field 'relu' must be true or false, not {self.relu!r}")
        if self.C % self.groups or self.M % self.groups:
            raise LayerError(f"Layer C={self.C} and M={self.M} must be divisible by "
                             f"groups={self.groups}")
        if self.E < 1 or self.F < 1:
            raise LayerError(f"Layer filter {self.R}x{self.S} is larger than the padded input "
                             f"{self.Hp}x{self.Wp}")


@dataclass(frozen=True)
class Mapping:
    """Row-stationary mapping parameters (names as in the Eyeriss papers).

    ``t`` PE sets with different filters share every ifmap value: ``t/h`` of them are stacked
    down the array, and each of those is a row of ``h`` sets side by side (Eyeriss's CONV1
    runs two 11 x 7 sets so). Each set is ``r`` sets on different channels (``q`` each) whose
    psums add up through the vertical links, so one pass covers ``r*q`` channels.
    ``active_pes`` is ``t*r*R*e``: ``(t/h)*r*R`` rows by ``h*e`` columns.
    """
    e: int          # output rows per strip (PE set width)
    t: int          # PE sets stacked down the array (different filters)
    p: int          # filters per PE
    q: int          # channels per PE
    n: int          # images per pass
    active_pes: int
    r: int = 1      # PE sets on different channels of the same filters, accumulating in-array
    h: int = 1      # of the t sets, how many sit side by side (t/h rows of them are stacked)

    def as_dict(self):
        return dict(self.__dict__)


@dataclass
class CompiledLayer:
    """The stream words for a layer and how to find the outputs in what comes back."""
    layer: Layer
    mapping: Mapping
    words: list = field(default_factory=list)
    # (group, n0, nn, strip e0, ee, m0 within group, filters per set p, sets t, out word count)
    reads: list = field(default_factory=list)
    passes: int = 0
    #: output frames (``tlast``-delimited) before the SYNC marker: one per READ or READ_RLC
    frames: int = 0
    #: MAC slots the array executes (done or gated), zero-padded filters of a last block included
    mac_slots: int = 0


def _check_fits(config, layer):
    if layer.R > config.rows:
        raise LayerError(f"Filter height R={layer.R} exceeds the array height rows={config.rows}")
    if layer.S > config.ifmap_spad_depth:
        raise LayerError(f"Filter width S={layer.S} exceeds ifmap_spad_depth="
                         f"{config.ifmap_spad_depth}")
    if layer.S > config.filter_spad_depth:
        raise LayerError(f"Filter width S={layer.S} exceeds filter_spad_depth="
                         f"{config.filter_spad_depth}")
    if layer.stride > config.max_stride:
        raise LayerError(f"Stride {layer.stride} exceeds max_stride={config.max_stride}")
    if layer.F > config.max_ofmap_width:
        raise LayerError(f"Output width F={layer.F} exceeds max_ofmap_width="
                         f"{config.max_ofmap_width}")
    if layer.out_shift and not 0 < layer.out_shift < config.acc_width:
        raise LayerError(f"out_shift={layer.out_shift} must be below acc_width="
                         f"{config.acc_width}")


def channel_set_problem(layer, mapping):
    """Why ``mapping``'s channel sets (``r``) cannot run ``layer``, or None."""
    r, q = mapping.r, mapping.q
    cg, U, R = layer.C // layer.groups, layer.stride, layer.R
    if r > 1 and cg % (r * q):
        return f"r={r} channel sets of q={q} do not divide the channels per group C/groups={cg}"
    if r > 1 and U >= R and mapping.n > 1:
        return (f"r={r} with stride U={U} >= R={R} needs n=1 (the ifmap nest has no level "
                f"left for images)")
    return None


def batch_rows_problem(mapping):
    """Why ``mapping``'s images per pass (``n``) exceed what a PE command's ``rows`` field
    holds, or None."""
    if mapping.n > MAX_PE_ROWS:
        return f"n={mapping.n} exceeds the {MAX_PE_ROWS} rows a PE command convolves"
    return None


def ifmap_chunk_words(config, layer, nn, r, q, rows_in):
    """Global-buffer (and stream) words of one channel chunk's ifmap rows: ``nn`` images,
    ``r`` channel sets of ``q`` channels, ``rows_in`` padded rows of ``Wp`` values each."""
    return math.ceil(nn * r * q * rows_in * layer.Wp / config.lanes)


def buffer_split(config, layer, e, n, q, p, t, r=1, h=1):
    """Global-buffer words one block of passes uses, per region: ``ifmap`` (one chunk's rows),
    ``psum`` (updated in place), ``output``, ``bias`` (data banks) and ``filter`` (filter
    banks)."""
    lanes = config.lanes
    rows_in = (e - 1) * layer.stride + layer.R
    lay = block_layout(config, layer, Block(0, 0, n, 0, e, rows_in, 0, t, p, r, h=h))
    return {
        "ifmap": ifmap_chunk_words(config, layer, n, r, q, rows_in),
        "psum": lay.out_word - lay.psum_word,
        "output": lay.out_words,
        "bias": lay.ifmap_word - lay.bias_word,
        "filter": math.ceil(t * r * layer.R * filter_row_elements(config, p * q * layer.S)
                            / lanes),
    }


def _buffer_words(config, layer, e, n, q, p, t, r=1, h=1):
    """Data-bank words and filter-bank words a block needs (see :func:`buffer_split`)."""
    split = buffer_split(config, layer, e, n, q, p, t, r, h)
    return sum(split.values()) - split["filter"], split["filter"]


def plan_mapping(config, layer):
    """The simple-rule mapping of ``layer``; raises :class:`LayerError` naming a broken limit."""
    layer.validate()
    _check_fits(config, layer)
    cg, mg = layer.C // layer.groups, layer.M // layer.groups
    q = max(1, min(cg, config.ifmap_spad_depth // layer.S,
                   config.filter_spad_depth // layer.S))
    t = max(1, min(config.rows // layer.R, mg))
    p = max(1, min(math.ceil(mg / t), config.psum_spad_depth,
                   config.filter_spad_depth // (q * layer.S)))
    e = min(layer.E, config.cols)
    while e > 1 and (e - 1) * layer.stride + layer.R > (1 << config.noc_id_width):
        e -= 1
    n = min(layer.N, MAX_PE_ROWS)
    data_words = config.glb_banks * config.glb_bank_depth
    filter_words = config.filter_region_words
    while True:
        need, fneed = _buffer_words(config, layer, e, n, q, p, t)
        if need <= data_words and fneed <= filter_words:
            break
        # shrink what costs the least reuse first: images per pass, filters per PE, strip
        # width, channels per PE
        if fneed > filter_words and p > 1:
            p = max(1, p // 2)
        elif fneed > filter_words and t > 1:
            t -= 1
        elif fneed > filter_words and q > 1:
            q = max(1, q // 2)
        elif n > 1:
            n = max(1, n // 2)
        elif p > 1:
            p -= 1
        elif e > 1:
            e -= 1
        elif q > 1:
            q = max(1, q // 2)
        else:
            raise LayerError(
                f"Layer does not fit the global buffer: one output row needs {need} of "
                f"{data_words} data words and {fneed} of {filter_words} filter words")
    return Mapping(e=e, t=t, p=p, q=q, n=n, active_pes=t * layer.R * e)


class Block(NamedTuple):
    """One block of passes: a group, a run of images, a strip of output rows and a block of
    filters; its channels are processed in chunks of ``r*q`` (one LOAD and one RUN pass
    each). ``q`` is the channels per set of its largest chunk (0 when unknown: then
    :func:`block_layout` gives the packed layout)."""
    g: int
    n0: int
    nn: int
    e0: int
    ee: int
    rows_in: int
    m0: int
    t: int
    p: int
    r: int = 1
    q: int = 0
    #: of the ``t`` sets, how many sit side by side (``t/h`` stacked rows of them)
    h: int = 1

    @property
    def tv(self):
        """Rows of sets stacked down the array: ``t/h``."""
        return self.t // self.h


def set_columns(mapping, t):
    """Sets side by side in a filter block of ``t`` sets under ``mapping``: ``min(h, t)``
    (:func:`filter_blocks` keeps ``t`` a multiple of it)."""
    return min(getattr(mapping, "h", 1), t)


def iter_blocks(layer, mapping):
    """The :class:`Block` s of ``layer`` under ``mapping`` in stream order (group, images,
    strip, filter block); the last of each may be smaller than the mapping's sizes, and a
    filter block re-balances its ``t`` and ``p`` to the filters left."""
    q = min(mapping.q, layer.C // layer.groups)
    fblocks = filter_blocks(layer, mapping)
    for g in range(layer.groups):
        for n0 in range(0, layer.N, mapping.n):
            nn = min(mapping.n, layer.N - n0)
            for e0 in range(0, layer.E, mapping.e):
                ee = min(mapping.e, layer.E - e0)
                rows_in = (ee - 1) * layer.stride + layer.R
                for m0, t, p in fblocks:
                    yield Block(g, n0, nn, e0, ee, rows_in, m0, t, p, mapping.r, q,
                                set_columns(mapping, t))


def filter_blocks(layer, mapping):
    """``(m0, t, p)`` of each filter block of a group, in stream order: ``t*p`` filters from
    ``m0``, the last block re-balanced to the filters left (with sets side by side, ``t``
    stays a multiple of :func:`set_columns`)."""
    mg = layer.M // layer.groups
    return [(m0, *filter_block_shape(mapping, min(mapping.p * mapping.t, mg - m0)))
            for m0 in range(0, mg, mapping.p * mapping.t)]


def filter_block_shape(mapping, rem):
    """``(t, p)`` of a filter block of ``rem`` filters: as many of the mapping's ``t`` sets as
    ``rem`` needs at ``p`` filters each (a whole number of rows of :func:`set_columns` sets),
    then ``p`` re-balanced over them."""
    t = min(mapping.t, math.ceil(rem / mapping.p))
    h = set_columns(mapping, t)
    t = -(-t // h) * h
    return t, math.ceil(rem / t)


def iter_chunks(layer, mapping):
    """``(c0, q)`` for each channel chunk of a group: ``r*q`` channels from ``c0``, ``q`` per
    channel set (with ``r > 1`` the mapping's ``r*q`` divides the channels; with ``r = 1`` the
    last chunk may be smaller)."""
    cg = layer.C // layer.groups
    step = mapping.r * mapping.q
    for c0 in range(0, cg, step):
        yield c0, min(mapping.q, cg - c0)


class BlockLayout(NamedTuple):
    """Where a :class:`Block` keeps its data in the global buffer (word addresses).

    ``row_step`` is the elements per PE row of the psum and output regions (``set_elems`` per
    row of ``h`` filter sets of ``r*R`` PE rows, whose top row emits the outputs; the sets of a
    row take ``ee*nn*F*pp`` elements each, one after the other); the psum region (updated in
    place) starts at word 0, then the outputs (``out_words``, from ``out_word``), the biases
    and the (first) ifmap region; see :func:`block_layout` and :func:`set_offset`."""
    row_step: int
    set_elems: int
    psum_word: int
    out_word: int
    out_words: int
    bias_word: int
    ifmap_word: int


def read_beside_next(config, layer, prev, cp):
    """Whether the READ of block ``prev``'s outputs may be detached (:data:`~rsaccel.hw.core.
    READ_DETACH_BIT`) so that the commands starting the next block (``cp``, the
    :class:`ChunkPass` of its first chunk) run beside it: its CONFIG (if its shape differs),
    bias and filter WRITEs, its first LOAD pass and the ifmap WRITE beside that. Only where
    neither WRITE touches the words the READ sends (the filters go to the filter banks,
    which hold no outputs)."""
    blk = cp.blk
    src = block_layout(config, layer, prev)
    lay = block_layout(config, layer, blk)
    ppw = config.lanes // config.psum_lanes
    writes = [(lay.bias_word, math.ceil(blk.t * padded_p(config, blk.p) / ppw))]
    if not cp.reused:
        writes.append((cp.ifmap_word, ifmap_chunk_words(config, layer, blk.nn, blk.r, cp.q,
                                                         blk.rows_in)))
    lo, hi = src.out_word, src.out_word + src.out_words
    return all(start + n <= lo or start >= hi for start, n in writes)


def filter_row_elements(config, pqs):
    """Filter-bank elements one PE row's ``pqs = p*q*S`` filter values take: ``pqs`` rounded
    up to a multiple of ``config.filter_group``, so every transfer of the LOAD pass is one
    aligned buffer read. The pad elements carry zeros and are never written to a spad."""
    g = config.filter_group
    return -(-pqs // g) * g


def padded_p(config, p):
    """``p`` rounded up to a multiple of ``config.psum_group``: the psums and outputs of one
    output position take this many elements in the buffer, so every group of psums (one
    transfer) is one aligned buffer access. The pad elements carry zeros."""
    g = config.psum_group
    return -(-p // g) * g


def block_layout(config, layer, blk):
    """The :class:`BlockLayout` of ``blk`` (a :class:`Block` of ``layer``).

    Packed: psums from word 0, then the outputs, the biases and one ifmap region. Where that
    leaves no room for a second ifmap region above the output writer's banks but there is room
    for one over the outputs (see :func:`ifmap_regions`; only with ``blk.q`` known), the
    outputs start at the first bank above the psums and are followed, after ``max(out_words,
    ifmap words)``, by the biases and the first ifmap region."""
    c = config
    ppw = c.lanes // c.psum_lanes
    g, pp = c.psum_group, padded_p(c, blk.p)
    row_step = math.ceil(blk.h * blk.ee * blk.nn * layer.F * pp / (blk.r * layer.R) / g) * g
    set_elems = blk.r * layer.R * row_step
    # one psum buffer, updated in place: a PE consumes a psum before it can produce the new
    # value of the same element, so every element is read before it is rewritten
    psum_words = math.ceil(blk.tv * set_elems / ppw)
    out_words = math.ceil(blk.tv * set_elems / c.lanes)
    bias_words = math.ceil(blk.t * pp / ppw)
    packed = BlockLayout(row_step=row_step, set_elems=set_elems, psum_word=0,
                         out_word=psum_words, out_words=out_words,
                         bias_word=psum_words + out_words,
                         ifmap_word=psum_words + out_words + bias_words)
    if not blk.q:
        return packed
    words = ifmap_chunk_words(c, layer, blk.nn, blk.r, blk.q, blk.rows_in)
    depth, total = c.glb_bank_depth, c.glb_banks * c.glb_bank_depth
    if _regions_above(c, packed, words) is not None:
        return packed
    out_word = -(-psum_words // depth) * depth
    bias_word = out_word + max(out_words, words)
    over = packed._replace(out_word=out_word, bias_word=bias_word,
                           ifmap_word=bias_word + bias_words)
    if over.ifmap_word + words <= total:
        return over
    return packed


def set_offset(config, layer, blk, lay, f):
    """First element of filter set ``f`` of ``blk`` in its psum and output regions (relative to
    the region; ``lay`` is its :class:`BlockLayout`): set ``f`` is the ``f % h``-th of the
    ``f // h``-th stacked row of sets."""
    fs, fh = divmod(f, blk.h)
    return fs * lay.set_elems + fh * blk.ee * blk.nn * layer.F * padded_p(config, blk.p)


def _regions_above(config, lay, words):
    """Two ifmap regions of ``words`` each starting above the banks of ``lay``'s psums,
    outputs and biases, or None if they do not fit."""
    depth = config.glb_bank_depth
    first = max(lay.ifmap_word, ((lay.bias_word - 1) // depth + 1) * depth)
    if first + 2 * words <= config.glb_banks * depth:
        return (first, first + words)
    return None


def ifmap_regions(config, layer, blk, q=None):
    """Word addresses of the ifmap regions of ``blk``, whose channel chunks hold at most ``q``
    channels per set (default ``blk.q``): ``(first,)``, or ``(first, second)`` when the data
    banks hold a second region. A block's last chunk uses the first region, the chunks before
    it alternate backwards (:func:`chunk_ifmap_word`).

    With two regions the next chunk's rows can be written from the stream while a RUN pass
    reads this chunk's (see :func:`compile_layer`). Stream writes and the output writer's
    writes never meet in a bank: either both regions start in banks above every word the
    output writer writes (the psum and output regions), or, where that does not fit, the
    second region lies over the output region, which starts in the first bank above the psums
    (:func:`block_layout`). The output writer writes outputs only in the last chunk's RUN
    pass, which reads the first region while the stream writes no ifmap rows, and psums in
    the other passes, in banks below both regions.
    """
    q = blk.q if q is None else q
    lay = block_layout(config, layer, blk if blk.q else blk._replace(q=q))
    words = ifmap_chunk_words(config, layer, blk.nn, blk.r, q, blk.rows_in)
    above = _regions_above(config, lay, words)
    if above is not None:
        return above
    if lay.out_word % config.glb_bank_depth == 0 and lay.bias_word - lay.out_word >= words \
            and lay.out_word > 0:
        return (lay.ifmap_word, lay.out_word)
    return (lay.ifmap_word,)


def chunk_ifmap_word(regions, ci, chunks):
    """The ifmap region (one of ``regions``, from :func:`ifmap_regions`) of chunk ``ci`` of a
    block of ``chunks``: the last uses the first region, the ones before alternate."""
    return regions[(chunks - 1 - ci) % len(regions)]


class ChunkPass(NamedTuple):
    """One LOAD + RUN pair of :func:`iter_passes`: chunk ``(c0, q)`` of ``blk``, ``ci``-th of
    the block's ``chunks`` in stream order, its rows in the region at ``ifmap_word`` (one of
    the block's ``regions``); ``reused`` when that region already holds them (no ifmap
    WRITE)."""
    blk: Block
    ci: int
    chunks: int
    c0: int
    q: int
    ifmap_word: int
    reused: bool
    regions: tuple


def fuses_load(config, cp, fuse_loads=True):
    """Whether chunk pass ``cp`` loads its filters in its RUN pass (one PASS with
    :attr:`~rsaccel.hw.pe.PEOp.LOAD_RUN`, so the ifmap stream's start overlaps the load):
    every chunk but a block's first where the block has two ifmap regions (its rows were
    written beside the previous RUN pass, so nothing else needs the LOAD's time). Never with
    zero skipping, and only with filter groups (``filter_group > 1``): with one value a
    transfer the cycle model is not yet exact for such passes (a few cycles a pass short),
    so those configurations keep a LOAD pass."""
    return can_fuse_loads(config, fuse_loads) and len(cp.regions) > 1 and cp.ci > 0


def can_fuse_loads(config, fuse_loads=True):
    """Whether ``config`` (with ``fuse_loads`` asked for) fuses any loads: no zero skipping,
    and filter groups (:func:`fuses_load`)."""
    return fuse_loads and not config.zero_skipping and config.filter_group > 1


def iter_passes(config, layer, mapping, *, double_ifmap=True, reuse_rows=True):
    """The :class:`ChunkPass` es of ``layer`` under ``mapping`` in stream order.

    Each block takes its chunks (:func:`iter_chunks`) in order, except that with
    ``reuse_rows`` a block whose ifmap rows are those of the block before (same images, strip
    and layout; only the filters differ; chunks all of one ``q``) takes them in the reverse
    of that block's order when its first chunk then lands in the region the block before
    left its last chunk's rows in: that chunk's rows are not sent again. ``double_ifmap``
    (False: one ifmap region) as for :func:`compile_layer`.
    """
    for blk, regions, order, reuse in iter_block_orders(config, layer, mapping,
                                                        double_ifmap=double_ifmap,
                                                        reuse_rows=reuse_rows):
        for ci, (c0, q) in enumerate(order):
            yield ChunkPass(blk, ci, len(order), c0, q, chunk_ifmap_word(regions, ci, len(order)),
                            reuse and ci == 0, regions)


def iter_block_orders(config, layer, mapping, *, double_ifmap=True, reuse_rows=True):
    """``(block, ifmap regions, chunk order, reused)`` for each block, as :func:`iter_passes`
    takes them (``reused``: its first chunk's rows are already in the buffer)."""
    chunks = list(iter_chunks(layer, mapping))
    one_q = len({q for _, q in chunks}) == 1
    region_cache = {}
    prev = None            # (rows key, regions, the previous block's chunk order)
    for blk in iter_blocks(layer, mapping):
        shape = blk._replace(g=0, n0=0, e0=0, m0=0)
        if shape not in region_cache:
            regions = ifmap_regions(config, layer, shape)
            region_cache[shape] = regions if double_ifmap else regions[:1]
        regions = region_cache[shape]
        key = (blk.g, blk.n0, blk.nn, blk.e0, blk.ee, blk.rows_in, blk.r, blk.q)
        order = chunks
        reuse = (reuse_rows and one_q and prev is not None and prev[0] == key
                 and _reuses(prev[1], regions, len(chunks)))
        if reuse:
            order = prev[2][::-1]
        yield blk, regions, order, reuse
        prev = (key, regions, order)


def run_sizes(total, size):
    """``[(size, count), ...]``: ``total`` cut into runs of ``size`` and a shorter last one."""
    full, rest = divmod(total, size)
    return [(size, full)] * bool(full) + [(rest, 1)] * bool(rest)


def _reuses(prev_regions, regions, chunks):
    """Whether a block with ``regions`` after one with ``prev_regions`` and the same rows can
    start from the rows the block before left (in its first region) in the buffer."""
    return prev_regions == regions and chunk_ifmap_word(regions, 0, chunks) == regions[0]


def reused_blocks(config, layer, mapping, *, double_ifmap=True, reuse_rows=True):
    """``{(nn, ee, t, p): blocks}``: how many blocks of each shape :func:`iter_block_orders`
    marks ``reused``, counted without walking every block (the mapper scores thousands of
    mappings)."""
    chunks = list(iter_chunks(layer, mapping))
    counts = {}
    fblocks = filter_blocks(layer, mapping)
    if not reuse_rows or len(fblocks) < 2 or len({q for _, q in chunks}) != 1:
        return counts

    for nn, ncount in run_sizes(layer.N, mapping.n):
        for ee, ecount in run_sizes(layer.E, mapping.e):
            rows_in = (ee - 1) * layer.stride + layer.R
            prev, cache = None, {}
            for _, t, p in fblocks:
                if (t, p) not in cache:
                    shape = Block(0, 0, nn, 0, ee, rows_in, 0, t, p, mapping.r, chunks[0][1],
                                  set_columns(mapping, t))
                    regions = ifmap_regions(config, layer, shape)
                    cache[t, p] = regions if double_ifmap else regions[:1]
                regions = cache[t, p]
                if prev is not None and _reuses(prev, regions, len(chunks)):
                    key = (nn, ee, t, p)
                    counts[key] = counts.get(key, 0) + layer.groups * ncount * ecount
                prev = regions
    return counts


def array_config_writes(config, layer, t, ee, r=1, h=1):
    """The array configuration of passes with ``t`` filter sets (``t/h`` stacked rows of
    ``h`` side by side) of ``r`` channel sets of ``ee`` columns: ``[(ArrayTarget, row, col,
    value), ...]`` (IDs and PE modes of every PE). Physical row ``(f*r + v)*R + i`` is filter
    row ``i`` of channel set ``v`` of stacked row ``f``, and columns ``k*ee ..`` hold its
    ``k``-th set (filter column ID ``k``; every set sees the same ifmap IDs); the ifmap
    row-bus ID is ``v``, and psums enter at the bottom of each filter set and rise through
    its ``r*R`` rows."""
    c, R, U = config, layer.R, layer.stride
    tv = t // h
    writes = []
    for row in range(c.rows):
        fv, i = divmod(row, R)
        f, v = divmod(fv, r)
        used_row = f < tv
        writes += [(ArrayTarget.FILT_ROW_ID, row, 0, row),
                   (ArrayTarget.IFMAP_ROW_ID, row, 0, v if used_row else 0),
                   (ArrayTarget.PSUM_ROW_ID, row, 0, row)]
        for col in range(c.cols):
            k, j = divmod(col, ee)
            used = used_row and k < h
            src = PSUM_GIN if (i == R - 1 and v == r - 1) else PSUM_BELOW
            writes += [
                (ArrayTarget.PE_MODE, row, col,
                 int(used) | ((src if used else PSUM_ZERO) << 1)),
                (ArrayTarget.FILT_COL_ID, row, col, k if used else 0),
                (ArrayTarget.IFMAP_COL_ID, row, col, (i + j * U) if used else 0),
                (ArrayTarget.PSUM_COL_ID, row, col, col),
            ]
    return writes


class PassProgram(NamedTuple):
    """What one PASS command starts: the PE command's fields (keywords of
    :class:`~rsaccel.hw.pe.PECommand`), the filter, ifmap and psum nests (or ``None``) and
    the output descriptor's fields (or ``None``)."""
    pe_cmd: dict
    filt: Nest = None
    ifmap: Nest = None
    psum: Nest = None
    output: dict = None


def load_pass_program(config, layer, blk, q):
    """The LOAD pass of ``blk``'s chunk of ``r*q`` channels (``q`` per channel set): filters
    into the PE spads."""
    c, R, S = config, layer.R, layer.S
    p, t, h = blk.p, blk.t, blk.h
    filter_base_word = c.glb_banks * c.glb_bank_depth
    rows, pqs, g = blk.tv * blk.r * R, p * q * S, c.filter_group
    # the filters of PE row `row`, set column k start at element (row*h + k)*per_row*g
    sides = [(h, filter_row_elements(c, pqs) // g, 0, 1)] if h > 1 else []
    if g == 1:
        # row after row: each PE takes a value a cycle
        levels = [(pqs, 1, 0, 0), *sides, (rows, h * pqs, 1, 0)]
    else:
        # groups of g values (the nest addresses groups); the rows take turns, so a PE writes
        # one group into its spad while the network serves the other rows
        per_row = filter_row_elements(c, pqs) // g
        levels = [*sides, (rows, h * per_row, 1, 0), (per_row, 1, 0, 0)]
    # the nest addresses groups: a group of several words is word j of each filter bank it
    # stripes over (AccelConfig.filter_words), and the reader adds the banks
    base = filter_base_word * c.lanes // g if g <= c.lanes else filter_base_word
    return PassProgram(
        pe_cmd=dict(op=PEOp.LOAD_FILTERS, s=S, p=p, q=q, stride=layer.stride, width=layer.F),
        filt=Nest(base=base, levels=levels))


def run_pass_program(config, layer, blk, q, *, first_chunk, last_chunk, ifmap_word=None,
                     load=False):
    """The RUN pass of ``blk``'s chunk of ``r*q`` channels (``q`` per channel set), reading
    its ifmap rows from ``ifmap_word`` (default: the block's first ifmap region, see
    :func:`ifmap_regions`). The first chunk starts from the biases, the last writes
    requantised outputs; the others spill raw psums in place. With ``load`` the pass loads
    the chunk's filters too (PE command LOAD_RUN and the LOAD pass's filter nest)."""
    c = config
    R, S, U, F, Wp = layer.R, layer.S, layer.stride, layer.F, layer.Wp
    lanes, ppw = c.lanes, c.lanes // c.psum_lanes
    nn, ee, rows_in, t, p, r = blk.nn, blk.ee, blk.rows_in, blk.t, blk.p, blk.r
    lay = block_layout(config, layer, blk)
    base = (lay.ifmap_word if ifmap_word is None else ifmap_word) * lanes
    # a PE takes exactly (F-1)*U + S positions per row: columns past the last window are
    # never sent. Channel set v takes channels v*q.. of the chunk, on ifmap row bus v.
    row_len = (F - 1) * U + S
    chan = rows_in * Wp
    sets = [(r, q * chan, 1, 0)] if r > 1 else []
    if U < R:
        ifmap_nest = Nest(base=base, levels=[
            (q, chan, 0, 0), (rows_in, Wp, 0, 1), *sets, (row_len, 1, 0, 0),
            (nn, r * q * chan, 0, 0)])
    else:
        images = [(nn, r * q * chan, 0, 0)] if nn > 1 or not sets else []
        ifmap_nest = Nest(base=base, levels=[
            (q, chan, 0, 0), (R, Wp, 0, 1), (ee, U * Wp, 0, U), *sets,
            (row_len, 1, 0, 0), *images])
    # psums enter at the bottom row of each filter set of r*R rows, in groups of g (the psum
    # nest addresses groups; an output position takes pp = padded_p elements)
    bottom, rise = r * R - 1, r * R
    g, pp = c.psum_group, padded_p(c, p)
    pg = pp // g
    h, tv = blk.h, blk.tv
    if first_chunk and h == 1:
        psum_nest = Nest(base=lay.bias_word * ppw // g, row=bottom, col=0, levels=[
            (pg, 1, 0, 0), (t, pg, rise, 0), (ee, 0, 0, 1), (F, 0, 0, 0), (nn, 0, 0, 0)])
    elif first_chunk:
        # set f = row*h + k takes bias elements f*pp..; columns in order, as below
        psum_nest = Nest(base=lay.bias_word * ppw // g, row=bottom, col=0, levels=[
            (pg, 1, 0, 0), (tv, h * pg, rise, 0), (ee, 0, 0, 1), (h, pg, 0, ee),
            (F * nn, 0, 0, 0)])
    else:
        # the h sets of a row lie one after the other (set_offset), so their h*ee columns
        # are one level
        psum_nest = Nest(base=lay.psum_word * ppw // g, row=bottom, col=0, levels=[
            (pg, 1, 0, 0), (tv, lay.set_elems // g, rise, 0), (h * ee, nn * F * pg, 0, 1),
            (F, pg, 0, 0), (nn, F * pg, 0, 0)])
    count = nn * F * pg * ee * t
    if last_chunk:
        output = dict(count=count, base=lay.out_word * lanes, row_step=lay.row_step,
                      col_step=nn * F * pp, shift=layer.out_shift, relu=int(layer.relu),
                      final=1)
    else:
        output = dict(count=count, base=lay.psum_word * ppw, row_step=lay.row_step,
                      col_step=nn * F * pp, shift=0, relu=0, final=0)
    return PassProgram(
        pe_cmd=dict(op=PEOp.LOAD_RUN if load else PEOp.RUN, rows=nn,
                    window=c.ifmap_spad_depth // q, s=S, p=p, q=q, stride=U, width=F),
        filt=load_pass_program(config, layer, blk, q).filt if load else None,
        ifmap=ifmap_nest, psum=psum_nest, output=output)


def _pack_fields(fields):
    """Pack ``[(value, width), ...]`` low bits first into an int."""
    out, shift = 0, 0
    for value, width in fields:
        out |= (int(value) & ((1 << width) - 1)) << shift
        shift += width
    return out


def _words(value, count, width=64):
    mask = (1 << width) - 1
    return [(value >> (width * k)) & mask for k in range(count)]


class _Emitter:
    def __init__(self, config):
        self.c = config
        self.words = []

    def header(self, op, low):
        self.words.append((op.value << 56) | low)

    def config(self, writes):
        layout = ArrayConfigWrite(self.c)
        self.header(Opcode.CONFIG, len(writes))
        for target, row, col, value in writes:
            self.words.append(layout.const({"target": target, "row": row, "col": col,
                                            "value": value}).as_bits())

    def write(self, word_addr, words):
        words = [int(w) for w in words]
        if words:
            self.header(Opcode.WRITE, word_addr | (len(words) << 24))
            self.words += words

    def read(self, word_addr, count, detach=False):
        self.header(Opcode.READ, word_addr | (count << 24) | (int(detach) << READ_DETACH_BIT))

    def write_rlc(self, elem_addr, values):
        """WRITE_RLC of ``values`` (data elements from ``elem_addr``), run-length coded."""
        from ..sim.rlc import encode
        coded = encode(np.asarray(values, dtype=np.int64), run_width=self.c.rlc_run_width,
                       level_width=self.c.rlc_level_width, word_width=self.c.stream_width)
        self.header(Opcode.WRITE_RLC, elem_addr | (len(values) << 24))
        self.words.append(len(coded))
        self.words += [int(w) for w in coded]

    def read_rlc(self, elem_addr, count):
        self.header(Opcode.READ_RLC, elem_addr | (count << 24))

    def pe_command(self, op, *, s=1, p=1, q=1, stride=1, width=1, rows=0, psum_in_en=1,
                   window=1):
        return PECommand(self.c).const({
            "op": op, "s": s, "p": p, "q": q, "stride": stride, "width": width, "rows": rows,
            "psum_in_en": psum_in_en, "window": window}).as_bits()

    def nest_words(self, nest):
        idw = self.c.noc_id_width
        limit = 1 << self.c.nest_count_width
        for count, *_ in nest.padded():
            if count >= limit:
                raise LayerError(f"A loop count of {count} exceeds the loop nests' "
                                 f"{self.c.nest_count_width}-bit counters (at most {limit - 1})")
        return _words(NestDescriptor(idw).const(nest.as_fields(idw)).as_bits(), NEST_WORDS)

    def output_words(self, *, count, base, row_step, col_step, shift, relu, final):
        bits = OutputDescriptor(self.c).const({
            "count": count, "base": base, "row_step": row_step, "col_step": col_step,
            "shift": shift, "relu": relu, "final": final}).as_bits()
        return _words(bits, OUTPUT_WORDS)

    def run_pass(self, *, pe_cmd=None, filt=None, ifmap=None, psum=None, output=None,
                 detach=False):
        flags = PassFlag.DETACH if detach else 0
        body = []
        if pe_cmd is not None:
            flags |= PassFlag.PE_CMD
            body.append(pe_cmd)
        for flag, nest in ((PassFlag.FILT, filt), (PassFlag.IFMAP, ifmap),
                           (PassFlag.PSUM, psum)):
            if nest is not None:
                flags |= flag
                body += self.nest_words(nest)
        if output is not None:
            flags |= PassFlag.OUTPUT
            body += output
        self.header(Opcode.PASS, int(flags))
        self.words += body

    def sync(self):
        self.header(Opcode.SYNC, 0)


def _pack_values(values, width, per_word):
    """Pack signed values ``width`` bits each, ``per_word`` per 64-bit word (zero padded)."""
    values = [int(v) & ((1 << width) - 1) for v in values]
    values += [0] * (-len(values) % per_word)
    return [_pack_fields([(v, width) for v in values[k:k + per_word]])
            for k in range(0, len(values), per_word)]


def check_rlc(config, rlc_in, rlc_out):
    """Refuse RLC transfers (:class:`LayerError`) on a configuration built without the codec."""
    if (rlc_in or rlc_out) and not config.rlc_codec:
        raise LayerError("RLC transfers need the RLC codec, and this configuration has "
                         "rlc_codec = False")


def compile_layer(config, layer, ifmap, weights, bias, mapping=None, *, rlc_in=False,
                  rlc_out=False, overlap=True, double_ifmap=True, reuse_rows=True,
                  detach_reads=True, fuse_loads=True):
    """Command/data stream words for ``layer`` with these tensors.

    ``ifmap`` (N, C, H, W), ``weights`` (M, C/groups, R, S), ``bias`` (M,), all integer arrays.
    With ``rlc_in`` the ifmap rows go run-length coded (WRITE_RLC; filters and biases always
    go plain); with ``rlc_out`` the ofmap comes back run-length coded (READ_RLC, one frame per
    PE set of each output block). Returns a :class:`CompiledLayer`; the accelerator's output
    stream is decoded with :func:`unpack_outputs`.

    With ``overlap`` every pass is detached (:attr:`~rsaccel.hw.core.PassFlag.DETACH`): a
    chunk's ifmap WRITE (or WRITE_RLC) runs beside its LOAD pass (which reads only the filter banks, and
    starts after the previous RUN pass, the last reader of the ifmap rows, has finished), and
    the next chunk's filter WRITE beside its RUN pass (which reads no filters). Every other
    command waits for the pass. Without it the decoder waits for each pass.

    With ``overlap`` and ``double_ifmap``, a block whose global-buffer space holds a second
    ifmap region (:func:`ifmap_regions`) alternates its chunks between the two, and each
    chunk after the first sends its ifmap WRITE right after its filter WRITE, beside the
    previous chunk's RUN pass: between two RUN passes only the LOAD is left.

    With ``overlap`` and ``detach_reads`` (and not ``rlc_in``) a block's output READ is
    detached where the next
    block's first WRITEs keep clear of the outputs (:func:`read_beside_next`): that block's
    CONFIG, bias and filter WRITEs, its first LOAD pass and the ifmap WRITE beside it run
    while the outputs go out.

    With ``reuse_rows``, a block that follows one with the same ifmap rows may take its
    chunks in reverse and start from the rows the block before left in the buffer, which are
    then not sent again (:func:`iter_passes`).

    With ``fuse_loads``, a chunk whose ifmap rows went beside the previous RUN pass loads its
    filters in its own RUN pass (:func:`fuses_load`): no LOAD pass between the two RUNs.
    """
    layer.validate()
    check_rlc(config, rlc_in, rlc_out)
    mp = mapping or plan_mapping(config, layer)
    problem = channel_set_problem(layer, mp) or batch_rows_problem(mp)
    if problem:
        raise LayerError(f"Mapping {mp}: {problem}")
    c = config
    dw = c.data_width
    lanes, ppw = c.lanes, c.lanes // c.psum_lanes
    psum_elem_bits = c.psum_lanes * dw
    R, S, U, F = layer.R, layer.S, layer.stride, layer.F
    cg, mg = layer.C // layer.groups, layer.M // layer.groups
    padded = np.pad(np.asarray(ifmap, dtype=np.int64),
                    ((0, 0), (0, 0), (layer.pad, layer.pad), (layer.pad, layer.pad)))
    weights = np.asarray(weights, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    em = _Emitter(c)
    out = CompiledLayer(layer=layer, mapping=mp)
    filter_base_word = c.glb_banks * c.glb_bank_depth

    configured = None
    pending_read = None    # (block, word, words) of a READ not yet sent
    for cp in iter_passes(config, layer, mp, double_ifmap=overlap and double_ifmap,
                          reuse_rows=reuse_rows):
        blk, ci, c0, q, ifmap_word = cp.blk, cp.ci, cp.c0, cp.q, cp.ifmap_word
        g, n0, nn, e0, ee, rows_in, m0, t, p = blk[:9]
        h0 = e0 * U
        lay = block_layout(config, layer, blk)
        if pending_read is not None:
            prev, word, words = pending_read
            em.read(word, words, detach=overlap and detach_reads and not rlc_in
                    and read_beside_next(config, layer, prev, cp))
            pending_read = None
        if ci == 0:
            # array configuration for this shape of pass
            shape = (t, ee, blk.h)
            if shape != configured:
                em.config(array_config_writes(config, layer, t, ee, blk.r, blk.h))
                configured = shape
            # bias of these filters (zero for filters past the end and in the pad elements),
            # as psums, pp per filter set
            pp = padded_p(c, p)
            b = np.zeros((t, pp), dtype=np.int64)
            fidx = m0 + np.arange(t * p).reshape(t, p)
            ok = fidx < mg
            b[:, :p][ok] = bias[g * mg + fidx[ok]]
            em.write(lay.bias_word, _pack_values(b.reshape(-1), psum_elem_bits, ppw))
        last_chunk = ci == cp.chunks - 1
        # filters: per physical row (stacked row fs, channel set cs, filter row i) and set
        # column (set v = fs*h + k): s, channel, filter, padded to the filter group
        fvals = []
        row_pad = filter_row_elements(c, p * q * S) - p * q * S
        for fs in range(blk.tv):
            for cs in range(blk.r):
                for i in range(R):
                    for v in range(fs * blk.h, (fs + 1) * blk.h):
                        for s_ in range(S):
                            for cc in range(q):
                                for k in range(p):
                                    m = m0 + v * p + k
                                    fvals.append(weights[g * mg + m, c0 + cs * q + cc, i, s_]
                                                 if m < mg else 0)
                        fvals += [0] * row_pad
        # one WRITE per filter bank a transfer stripes over (word w of each group in bank w)
        fwords, kw = _pack_values(fvals, dw, lanes), c.filter_words

        def write_filters():
            for w in range(kw):
                em.write(filter_base_word + w * c.glb_bank_depth, fwords[w::kw])
        # ifmap rows h0 .. h0+rows_in-1 of channels c0..c0+q-1, images n0.. (none when the
        # region still holds them from the block before)
        rows = padded[n0:n0 + nn, g * cg + c0:g * cg + c0 + blk.r * q, h0:h0 + rows_in, :]

        def write_ifmap():
            if cp.reused:
                return
            if rlc_in:
                em.write_rlc(ifmap_word * lanes, rows.reshape(-1))
            else:
                em.write(ifmap_word, _pack_values(rows.reshape(-1), dw, lanes))
        # with two regions, a later chunk's rows go beside the previous RUN pass (which reads
        # the other region), before its filters (their WRITE waits while that pass, if it
        # loaded its filters too, still reads the filter banks); otherwise beside this chunk's
        # LOAD, after that RUN
        early = len(cp.regions) > 1 and ci > 0
        if early:
            write_ifmap()
        write_filters()
        fused = fuses_load(c, cp, fuse_loads)
        if not fused:
            load = load_pass_program(config, layer, blk, q)
            em.run_pass(pe_cmd=em.pe_command(**load.pe_cmd), filt=load.filt, detach=overlap)
        if not early:
            write_ifmap()
        run = run_pass_program(config, layer, blk, q, first_chunk=ci == 0,
                               last_chunk=last_chunk, ifmap_word=ifmap_word, load=fused)
        em.run_pass(pe_cmd=em.pe_command(**run.pe_cmd), filt=run.filt, ifmap=run.ifmap,
                    psum=run.psum, output=em.output_words(**run.output), detach=overlap)
        out.passes += 1
        out.mac_slots += nn * F * ee * R * S * q * p * t * blk.r
        if not last_chunk:
            continue
        out_word, out_words = lay.out_word, lay.out_words
        pp = padded_p(c, p)
        offsets = [set_offset(c, layer, blk, lay, v) for v in range(t)]
        if rlc_out:
            # the outputs of filter set v are elements offsets[v] .. + ee*nn*F*pp of the region
            for v in range(t):
                em.read_rlc(out_word * lanes + offsets[v], ee * nn * F * pp)
            out.frames += t
        else:
            # sent when the next block starts (detached if it can go beside that start)
            pending_read = (blk, out_word, out_words)
            out.frames += 1
        out.reads.append(dict(group=g, n0=n0, nn=nn, e0=e0, ee=ee, m0=m0, p=p, pp=pp, t=t,
                              set_offsets=offsets, words=out_words, rlc=bool(rlc_out)))
    if pending_read is not None:
        em.read(*pending_read[1:])
    em.sync()
    out.words = em.words
    return out


def unpack_outputs(config, compiled, words):
    """The (N, M, E, F) ofmap from the accelerator's output words (READ or READ_RLC data, then
    SYNC). Raises ValueError if the words do not match the reads (a malformed RLC frame
    included)."""
    from ..sim.rlc import decode
    layer = compiled.layer
    lanes, dw = config.lanes, config.data_width
    ofmap = np.zeros((layer.N, layer.M, layer.E, layer.F), dtype=np.int64)
    mg = layer.M // layer.groups
    flag = 1 << (config.stream_width - 1)
    pos = 0
    for rd in compiled.reads:
        nn, ee, p, t, F = rd["nn"], rd["ee"], rd["p"], rd["t"], layer.F
        pp = rd.get("pp", p)
        if rd.get("rlc"):
            # one coded frame per set, ending at the word with the last flag
            per_set = []
            for v in range(t):
                end = pos
                while end < len(words) and not int(words[end]) & flag:
                    end += 1
                per_set.append(decode(np.array(words[pos:end + 1], dtype=np.uint64),
                                      ee * nn * F * pp, run_width=config.rlc_run_width,
                                      level_width=config.rlc_level_width,
                                      word_width=config.stream_width))
                pos = end + 1
        else:
            chunk = words[pos:pos + rd["words"]]
            pos += rd["words"]
            values = []
            for w in chunk:
                for k in range(lanes):
                    v = (int(w) >> (k * dw)) & ((1 << dw) - 1)
                    values.append(v - (1 << dw) if v >> (dw - 1) else v)
            values = np.array(values, dtype=np.int64)
            per_set = [values[off:] for off in rd["set_offsets"]]
        for v in range(t):
            for j in range(ee):
                start = j * nn * F * pp
                seg = per_set[v][start:start + nn * F * pp].reshape(nn, F, pp)
                for k in range(p):
                    m = rd["m0"] + v * p + k
                    if m < mg:
                        ofmap[rd["n0"]:rd["n0"] + nn, rd["group"] * mg + m,
                              rd["e0"] + j, :] = seg[:, :, k]
    if pos != len(words) - 1:
        raise ValueError(f"Expected {pos} output words and a SYNC marker, got {len(words)} words")
    return ofmap


def expected_output_words(config, compiled, ofmap):
    """The output words the accelerator must send for ``ofmap``, as ``(value, mask, last)``.

    The inverse of :func:`unpack_outputs`: one triple per READ word, in stream order, whose
    ``mask`` selects the lanes that hold ofmap values (the others carry whatever the buffer held
    there and are not checked) and whose ``last`` is the TLAST the word must carry (the last word
    of each READ), then one for the SYNC marker that checks its marker bits (not its count). Used by checkers that compare the stream word by word, such as the board
    self-test.
    """
    from ..hw.core import SYNC_MARKER
    layer = compiled.layer
    lanes, dw = config.lanes, config.data_width
    ofmap = np.asarray(ofmap)
    if ofmap.shape != (layer.N, layer.M, layer.E, layer.F):
        raise ValueError(f"ofmap must have shape {(layer.N, layer.M, layer.E, layer.F)}, "
                         f"not {ofmap.shape}")
    mg = layer.M // layer.groups
    lane_mask = (1 << dw) - 1
    pairs = []
    for rd in compiled.reads:
        values = [0] * (rd["words"] * lanes)
        care = [False] * (rd["words"] * lanes)
        nn, ee, p, t, F = rd["nn"], rd["ee"], rd["p"], rd["t"], layer.F
        pp = rd.get("pp", p)
        for v in range(t):
            for j in range(ee):
                start = rd["set_offsets"][v] + j * nn * F * pp
                for n in range(nn):
                    for f in range(F):
                        for k in range(p):
                            m = rd["m0"] + v * p + k
                            if m < mg:
                                index = start + (n * F + f) * pp + k
                                values[index] = int(ofmap[rd["n0"] + n, rd["group"] * mg + m,
                                                          rd["e0"] + j, f]) & lane_mask
                                care[index] = True
        for w in range(rd["words"]):
            value = mask = 0
            for k in range(lanes):
                if care[w * lanes + k]:
                    value |= values[w * lanes + k] << (k * dw)
                    mask |= lane_mask << (k * dw)
            pairs.append((value, mask, int(w == rd["words"] - 1)))
    marker_mask = ((1 << config.stream_width) - 1) & ~((1 << 48) - 1)
    pairs.append((SYNC_MARKER & marker_mask, marker_mask, 1))
    return pairs
