"""Dataflow comparison: WS, OS, NLR and RS scored on one abstract spatial architecture.

Chen, Emer and Sze (ISCA 2016) compared the row-stationary dataflow with weight-stationary,
output-stationary and no-local-reuse dataflows on the same PE count and storage area, each with
its own best mapping, and found RS 1.4x-2.5x more energy-efficient on the AlexNet CONV layers
(256 PEs, batch 16). This module repeats that comparison with an analytical model of our own.

The architecture
----------------
``pes`` PEs, each with an RF (register file) of ``rf_bytes``, share one global buffer (GLB) of
``glb_bytes`` in front of DRAM. Values are 16-bit words. Four access levels are charged, with
the costs of :class:`~rsaccel.sim.perf_model.EnergyCosts` (``spad`` is the RF): DRAM, GLB,
array (one transfer of one value into or out of one PE, from the GLB or from another PE) and
RF, plus one MAC per multiply-accumulate.

A blocking
----------
A :class:`Blocking` splits each loop of one group of the layer (``N M C E F R S``, with ``M``
and ``C`` per group) into four levels, outermost first: ``dram`` loops step the GLB through
tiles; ``glb`` loops step the array through *steps*; ``spatial`` loops spread a step over PEs;
``rf`` loops are the PE's own loops (one MAC per PE per iteration). Factors must divide exactly.
Groups of a grouped convolution run one after another; every count is per group times
``groups``.

Counting rules
--------------
Every transfer is charged once: at the level an input is read from, at the level a partial sum
is written to. This follows the blocking analysis (Yang et al. 2016): a level holding a tile of
a data type is refilled only when a loop relevant to that type advances, so the accesses it
makes to the level above are the tile size times the fetch count (the product of the outer
loop factors, less the innermost run of loops irrelevant to the type, loops of factor 1
skipped). A partial sum fetched ``f`` times costs ``2f - 1`` accesses: it is written ``f`` times
and read ``f - 1`` times, the first time starting from zero.

- DRAM: the GLB holds one tile of each type; DRAM accesses are the GLB tile times its fetch
  count over the ``dram`` loops.
- The array state does not survive a GLB tile change: each ``dram`` iteration starts with empty
  RFs and flushes its partial sums to the GLB at its end.
- How a PE gets and keeps each type is the dataflow's *mode* for it:

  ``rf``
      Kept in the PE's RF. The RF tile (all the ``rf`` loops cover) is refilled when a
      relevant ``glb`` loop advances; each refill costs one array transfer per value per PE
      and one GLB read per distinct value of the array (multicast). Every MAC reads an input
      operand from the RF; every MAC reads and writes its partial sum there (no read when the
      partial sum starts from zero in this PE).
  ``bypass``
      Not stored in the PE. Each MAC receives its input over the array; the GLB sends each
      distinct value needed in an RF iteration once (multicast). Each MAC's product leaves
      the PE over the array.
  ``forward``
      Not stored in the PE, but passed between neighbouring PEs: each MAC receives its input
      over the array, and the GLB sends only the values the array did not need in the RF
      iteration before (sliding-window reuse by forwarding; a new step starts from none).

- Partial sums that several PEs produce for one output in one step (a spatial reduction) are
  added on their way out: each PE's partial sum is one array transfer, the sum one GLB write.
  A partial sum already in the GLB is read and sent back into one PE (one GLB read, one array
  transfer) whenever a later step continues it. Finished outputs are written from the GLB to
  DRAM once more per GLB tile fetch, as above.
- The ifmap is stored padded; padding counts as data.

The dataflows (:data:`TEMPLATES`)
---------------------------------
``WS``  weight stationary: the RF keeps weights (filter ``rf``); the array spreads ``M C R S``;
        ifmaps are forwarded between PEs, partial sums are reduced across PEs and leave the PE
        every MAC. A PE sweeps whole output rows (``F`` in its RF loops).
``OSA`` output stationary, one output channel, many pixels (``E F`` spatial): partial sums stay
        in the RF, weights are broadcast, ifmaps forwarded (ShiDianNao-like).
``OSB`` output stationary, many channels and pixels (``M E F`` spatial).
``OSC`` output stationary, many channels, one pixel (``M`` spatial): weights are unicast, the
        ifmap is broadcast.
``NLR`` no local reuse: no RF; ``M C`` spatial, ifmaps multicast, weights unicast, partial sums
        reduced across PEs (DianNao-like).
``RS``  row stationary: a PE convolves one filter row (``S``) with one ifmap row, sliding, to a
        partial-sum row (``F``), interleaving ``n`` images, ``q`` channels and ``p`` filters
        (``rf`` loops ``N F C S M``); PE sets are ``R`` rows by ``e`` columns, ``t`` sets with
        other filters and ``r`` with other channels (``spatial`` ``R E M C``). All three types
        are ``rf``.

RF capacity: data kept across steps (its RF tile is not refilled when a ``glb`` loop advances)
needs its whole RF tile. Otherwise a type needs only what its loop order keeps live: for RS
``p*q*S`` weights, a ``q*S`` ifmap window and ``p`` partial sums (Eyeriss's spad use); for WS
its weights; for OS one partial sum. The GLB holds its three tiles at once.

Storage (:func:`equal_area_storage`)
------------------------------------
Following the paper's baseline, the area of ``pes`` RFs of 512 B plus a GLB of ``pes * 512 B``
(128 KB at 256 PEs) is shared by every dataflow. Assumed here: one RF byte takes the area of
``rf_area_ratio`` = 2 GLB bytes, RS keeps 512 B RFs and a 128 KB GLB, NLR has no RF, WS and the
OS variants keep small 32 B RFs; the RF area a dataflow does not use becomes GLB (384 KB for
NLR, 368 KB for WS and OS). The paper's own table was not available to us; these are
assumptions, and every function takes other sizes.

The search (:func:`best_blocking`)
----------------------------------
:func:`evaluate` scores any blocking the template allows. The search covers each dataflow's own
mapping space, divisor factors only: RS keeps ``R`` spatial and whole rows (``F``, ``S``) in the
RF, as Eyeriss does; WS sweeps whole output rows (``F`` in the RF), spreads ``R x S`` over PEs
whole or not at all, and holds up to the RF's words of weights; OSA/OSB/OSC keep one output per
PE with its whole ``R x S`` window in the RF; NLR has no RF loops. Every PE-level mapping of
that space is tried against every GLB tile that fits and cannot grow along a loop without
overflowing the GLB (a larger tile never costs more while an array transfer costs at least an
RF access), with the six orders of the ``glb`` loops and the six of the ``dram`` loops that
matter (loops irrelevant to the same data type are interchangeable). The winner is scored
again with :func:`evaluate`. AlexNet CONV1-5 for all six dataflows takes about a second.

numpy only; no simulator.
"""

from dataclasses import dataclass, field
from functools import lru_cache
import itertools
import math

import numpy as np

from ..gen.compiler import Layer
from .perf_model import EnergyCosts

__all__ = ["DATAFLOWS", "LEVELS", "DTYPES", "DIMS", "BLOCK_LEVELS", "DRAM_DIMS", "RELEVANT",
           "TEMPLATES", "DEFAULT_RF_BYTES", "DataflowTemplate", "Storage", "Blocking",
           "DataflowResult", "equal_area_storage", "evaluate", "best_blocking",
           "compare_dataflows"]

#: The dataflows compared, in the paper's order.
DATAFLOWS = ("WS", "OSA", "OSB", "OSC", "NLR", "RS")
#: Energy and count levels, innermost first.
LEVELS = ("mac", "rf", "array", "glb", "dram")
#: Data types.
DTYPES = ("ifmap", "filter", "psum")
#: Loop dimensions of one group (``M`` and ``C`` per group).
DIMS = ("N", "M", "C", "E", "F", "R", "S")
#: Levels of a :class:`Blocking`, outermost first.
BLOCK_LEVELS = ("dram", "glb", "spatial", "rf")
#: Loops the GLB may be stepped along (a GLB tile always holds whole rows and filter windows).
DRAM_DIMS = ("N", "M", "C", "E")

#: Loop dimensions each data type depends on.
RELEVANT = {
    "ifmap": frozenset("NCEFRS"),
    "filter": frozenset("MCRS"),
    "psum": frozenset("NMEF"),
}
# The loops irrelevant to each data type. Loops of one such group are interchangeable, so an
# order of a level's loops that matters is an order of these three groups.
_IRRELEVANT = {"ifmap": ("M",), "filter": ("N", "E", "F"), "psum": ("C", "R", "S")}
_ORDERS = tuple(itertools.permutations(DTYPES))          # groups, outermost first, by owner


@dataclass(frozen=True)
class DataflowTemplate:
    """What a dataflow keeps where, and which loops it may map to PEs and RFs.

    Attributes
    ----------
    name : str
        ``"WS"``, ``"OSA"``, ``"OSB"``, ``"OSC"``, ``"NLR"`` or ``"RS"``.
    description : str
        One line.
    modes : dict
        Data type -> ``"rf"``, ``"bypass"`` or ``"forward"`` (see the module docstring).
    spatial : tuple of str
        Dimensions that may be spread over PEs.
    rf : tuple of str
        Dimensions of the PE's own loops, outermost first (the order is part of the dataflow).
    """
    name: str
    description: str
    modes: dict = field(hash=False)
    spatial: tuple
    rf: tuple


#: The templates of :data:`DATAFLOWS`.
TEMPLATES = {
    "WS": DataflowTemplate(
        "WS", "weight stationary: weights in RFs, ifmaps forwarded, psums reduced across PEs",
        {"ifmap": "forward", "filter": "rf", "psum": "bypass"},
        spatial=("M", "C", "R", "S"), rf=("M", "C", "E", "F")),
    "OSA": DataflowTemplate(
        "OSA", "output stationary, one channel x many pixels: weights broadcast, ifmaps forwarded",
        {"ifmap": "forward", "filter": "bypass", "psum": "rf"},
        spatial=("E", "F"), rf=("C", "R", "S")),
    "OSB": DataflowTemplate(
        "OSB", "output stationary, many channels x many pixels",
        {"ifmap": "forward", "filter": "bypass", "psum": "rf"},
        spatial=("M", "E", "F"), rf=("C", "R", "S")),
    "OSC": DataflowTemplate(
        "OSC", "output stationary, many channels x one pixel: weights unicast, ifmap broadcast",
        {"ifmap": "bypass", "filter": "bypass", "psum": "rf"},
        spatial=("M",), rf=("C", "R", "S")),
    "NLR": DataflowTemplate(
        "NLR", "no local reuse: no RF, ifmaps multicast, weights unicast, psums reduced in array",
        {"ifmap": "bypass", "filter": "bypass", "psum": "bypass"},
        spatial=("M", "C"), rf=()),
    "RS": DataflowTemplate(
        "RS", "row stationary: filter rows, ifmap rows and psum rows in RFs (Eyeriss)",
        {"ifmap": "rf", "filter": "rf", "psum": "rf"},
        spatial=("R", "E", "M", "C"), rf=("N", "F", "C", "S", "M")),
}

#: RF bytes per PE each dataflow keeps under :func:`equal_area_storage` (assumed, see above).
DEFAULT_RF_BYTES = {"WS": 32, "OSA": 32, "OSB": 32, "OSC": 32, "NLR": 0, "RS": 512}
_BASELINE_RF_BYTES = 512


# --------------------------------------------------------------------------------------------
# storage


@dataclass(frozen=True)
class Storage:
    """PE count and storage sizes of one architecture.

    Parameters
    ----------
    pes : int
        Processing elements.
    rf_bytes : int
        RF bytes per PE (16-bit words: ``rf_bytes // 2``).
    glb_bytes : int
        Global-buffer bytes.

    Raises
    ------
    TypeError
        If a field is not an integer.
    ValueError
        If ``pes`` or ``glb_bytes`` is not positive or ``rf_bytes`` is negative.
    """
    pes: int
    rf_bytes: int
    glb_bytes: int

    def __post_init__(self):
        for name, low in (("pes", 1), ("rf_bytes", 0), ("glb_bytes", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < low:
                raise ValueError(f"{name} must be at least {low}, not {value}")

    @property
    def rf_words(self):
        return self.rf_bytes // 2

    @property
    def glb_words(self):
        return self.glb_bytes // 2

    def as_dict(self):
        return {"pes": self.pes, "rf_bytes": self.rf_bytes, "glb_bytes": self.glb_bytes}


def equal_area_storage(dataflow, *, pes=256, rf_bytes=None, rf_area_ratio=2.0):
    """The storage of ``dataflow`` on the paper's baseline area.

    The area is that of ``pes`` RFs of 512 B plus a GLB of ``pes * 512`` bytes. The dataflow
    keeps ``rf_bytes`` per PE (default :data:`DEFAULT_RF_BYTES`) and the rest of the area is
    GLB, one RF byte taking the area of ``rf_area_ratio`` GLB bytes.

    Parameters
    ----------
    dataflow : str
        A name of :data:`DATAFLOWS`.
    pes : int
        Processing elements.
    rf_bytes : int, optional
        RF bytes per PE; at most 512 times ``1 + 1/rf_area_ratio``.
    rf_area_ratio : float
        Area of one RF byte in GLB bytes.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        For an unknown dataflow, a non-positive ``pes`` or ``rf_area_ratio``, or an RF too large
        for the area.
    """
    _check_dataflow(dataflow)
    if not isinstance(pes, int) or isinstance(pes, bool) or pes < 1:
        raise ValueError(f"pes must be a positive integer, not {pes!r}")
    if not isinstance(rf_area_ratio, (int, float)) or not rf_area_ratio > 0:
        raise ValueError(f"rf_area_ratio must be a positive number, not {rf_area_ratio!r}")
    rf = DEFAULT_RF_BYTES[dataflow] if rf_bytes is None else rf_bytes
    if not isinstance(rf, int) or isinstance(rf, bool) or rf < 0:
        raise ValueError(f"rf_bytes must be a non-negative integer, not {rf!r}")
    area = pes * _BASELINE_RF_BYTES * rf_area_ratio + pes * _BASELINE_RF_BYTES
    glb = int(round(area - pes * rf * rf_area_ratio))
    if glb < 2:
        raise ValueError(f"rf_bytes={rf} leaves no area for the global buffer (area of "
                         f"{area:.0f} GLB bytes at rf_area_ratio={rf_area_ratio})")
    return Storage(pes=pes, rf_bytes=rf, glb_bytes=glb)


# --------------------------------------------------------------------------------------------
# blocking


@dataclass(frozen=True)
class Blocking:
    """Loop factors per level; each level a tuple of ``(dim, factor)``, outermost first.

    ``spatial`` is unordered. A dimension a level does not list has factor 1 there.

    Attributes
    ----------
    dram, glb, spatial, rf : tuple of (str, int)
    """
    dram: tuple = ()
    glb: tuple = ()
    spatial: tuple = ()
    rf: tuple = ()

    def factor(self, level, dim):
        """The factor of ``dim`` at ``level`` (1 if absent)."""
        for d, f in getattr(self, level):
            if d == dim:
                return f
        return 1

    def factors(self, level):
        """``{dim: factor}`` of ``level`` for every dimension."""
        out = dict.fromkeys(DIMS, 1)
        for d, f in getattr(self, level):
            out[d] = f
        return out

    def as_dict(self):
        return {level: [[d, f] for d, f in getattr(self, level)] for level in BLOCK_LEVELS}

    def __str__(self):
        return "; ".join(f"{level} " + (" ".join(f"{d}{f}" for d, f in getattr(self, level))
                                        or "-") for level in BLOCK_LEVELS)


# --------------------------------------------------------------------------------------------
# geometry helpers


@lru_cache(maxsize=None)
def _divisors(n):
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def _rows(a, b, u):
    """Distinct ``u*i + j`` for ``i < a``, ``j < b`` (input rows of ``a`` outputs, ``b`` taps)."""
    return (a - 1) * u + b if b >= u else a * b


def _rows_np(a, b, u):
    return np.where(b >= u, (a - 1) * u + b, a * b)


def _cover(dtype, ext, u, rows=_rows):
    """Values of ``dtype`` a block of contiguous index ranges ``ext`` (dim -> length) covers."""
    g = ext.get
    if dtype == "filter":
        return g("M", 1) * g("C", 1) * g("R", 1) * g("S", 1)
    if dtype == "psum":
        return g("N", 1) * g("M", 1) * g("E", 1) * g("F", 1)
    return (g("N", 1) * g("C", 1) * rows(g("E", 1), g("R", 1), u)
            * rows(g("F", 1), g("S", 1), u))


@lru_cache(maxsize=None)
def _pair_set(u_step, n_out, tap_step, n_tap):
    return frozenset(u_step * i + tap_step * j for i in range(n_out) for j in range(n_tap))


@lru_cache(maxsize=None)
def _pair_overlap(u_step, n_out, tap_step, n_tap, shift):
    values = _pair_set(u_step, n_out, tap_step, n_tap)
    return sum(1 for v in values if v + shift in values)


def _window_axes(dtype, P, L, u):
    """The values all PEs need in one RF iteration, as a product of per-axis index sets.

    Each axis is ``(kind, params, shift)``: ``line`` axes hold ``{stride*i : i < n}``, ``pair``
    axes (ifmap rows and columns) ``{a*i + b*j}``; ``shift(delta)`` maps a change of the RF
    loop indices to the axis's translation.
    """
    p, l = (lambda d: P.get(d, 1)), (lambda d: L.get(d, 1))
    line = lambda d: ("line", (l(d), p(d)), lambda delta, d=d: delta.get(d, 0))
    if dtype == "filter":
        return [line("M"), line("C"), line("R"), line("S")]
    if dtype == "psum":
        return [line("N"), line("M"), line("E"), line("F")]
    return [line("N"), line("C"),
            ("pair", (u * l("E"), p("E"), l("R"), p("R")),
             lambda delta: u * delta.get("E", 0) + delta.get("R", 0)),
            ("pair", (u * l("F"), p("F"), l("S"), p("S")),
             lambda delta: u * delta.get("F", 0) + delta.get("S", 0))]


def _axis_size(kind, params):
    if kind == "line":
        return params[1]
    return len(_pair_set(*params))


def _axis_overlap(kind, params, shift):
    if kind == "line":
        stride, n = params
        if shift % stride:
            return 0
        return max(0, n - abs(shift) // stride)
    return _pair_overlap(*params, shift)


def _window_size(dtype, P, L, u):
    """Distinct values of ``dtype`` all PEs use in one RF iteration."""
    return math.prod(_axis_size(k, prm) for k, prm, _ in _window_axes(dtype, P, L, u))


def _forward_reads(dtype, P, L, rf_order, u):
    """GLB reads per step of a forwarded type: the first window, then what each RF iteration
    needs that the one before did not."""
    axes = _window_axes(dtype, P, L, u)
    size = math.prod(_axis_size(k, prm) for k, prm, _ in axes)
    loops = [(d, L[d]) for d in rf_order if L.get(d, 1) > 1]
    reads = size
    outer = 1
    for i, (dim, f) in enumerate(loops):
        delta = {dim: 1}
        for inner_dim, inner_f in loops[i + 1:]:
            delta[inner_dim] = -(inner_f - 1)
        kept = math.prod(_axis_overlap(k, prm, shift(delta)) for k, prm, shift in axes)
        reads += outer * (f - 1) * (size - kept)
        outer *= f
    return reads


def _retention(loops, dtype):
    """Product of the innermost run of loops irrelevant to ``dtype`` (factor-1 loops skipped)."""
    kept = 1
    for dim, f in reversed(loops):
        if f == 1:
            continue
        if dim in RELEVANT[dtype]:
            break
        kept *= f
    return kept


def _stream_footprint(name, dtype, L, tile):
    """RF words ``dtype`` needs when its RF tile is not kept across steps."""
    if name == "RS":
        if dtype == "ifmap":
            return L.get("C", 1) * L.get("S", 1)          # q*S sliding window
        if dtype == "psum":
            return L.get("M", 1)                          # p partial sums
        return tile                                        # p*q*S weights
    if TEMPLATES[name].modes[dtype] != "rf":
        return 0
    if dtype == "psum":
        return 1                                          # OS: one accumulating output
    return tile                                            # WS: its weights


def _group_dims(layer):
    return {"N": layer.N, "M": layer.M // layer.groups, "C": layer.C // layer.groups,
            "E": layer.E, "F": layer.F, "R": layer.R, "S": layer.S}


def _check_dataflow(dataflow):
    if dataflow not in TEMPLATES:
        raise ValueError(f"Dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")


def _check_layer(layer):
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a rsaccel.gen.compiler.Layer, not {layer!r}")
    layer.validate()


def _check_costs(costs):
    if costs is None:
        return EnergyCosts()
    if not isinstance(costs, EnergyCosts):
        raise TypeError(f"costs must be an EnergyCosts, not {costs!r}")
    for name in ("mac", "spad", "array", "glb", "dram"):
        value = getattr(costs, name)
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"Energy cost '{name}' must be a non-negative number, not {value!r}")
    return costs


def _check_arguments(layer, dataflow, costs, storage):
    """Validate the arguments of one dataflow's evaluation; returns ``(costs, storage)`` with
    the defaults filled in (Eyeriss's costs, the dataflow's equal-area storage)."""
    _check_layer(layer)
    _check_dataflow(dataflow)
    costs = _check_costs(costs)
    storage = equal_area_storage(dataflow) if storage is None else storage
    if not isinstance(storage, Storage):
        raise TypeError(f"storage must be a Storage, not {storage!r}")
    return costs, storage


# --------------------------------------------------------------------------------------------
# evaluation of one blocking


@dataclass
class DataflowResult:
    """Access counts and energy of one layer under one dataflow and blocking.

    Attributes
    ----------
    dataflow : str
    layer : Layer
    blocking : Blocking
    storage : Storage
    counts : dict
        Level -> data type -> accesses (``counts["mac"]["mac"]`` is the MAC count); levels are
        :data:`LEVELS`, data types :data:`DTYPES`.
    energy : dict
        The same keys, in units of one MAC (counts times :class:`EnergyCosts`).
    rf_words_used : int
        RF words per PE the blocking needs.
    glb_words_used : int
        GLB words the blocking's tiles need.
    """
    dataflow: str
    layer: Layer
    blocking: Blocking
    storage: Storage
    counts: dict
    energy: dict
    rf_words_used: int = 0
    glb_words_used: int = 0

    @property
    def macs(self):
        return self.counts["mac"]["mac"]

    @property
    def total_energy(self):
        return sum(sum(v.values()) for v in self.energy.values())

    @property
    def energy_per_mac(self):
        return self.total_energy / self.macs

    def level_energy(self):
        """Energy per level, summed over data types."""
        return {level: sum(self.energy[level].values()) for level in LEVELS}

    def dtype_energy(self):
        """Energy per data type, summed over the memory levels (MACs excluded)."""
        return {d: sum(self.energy[level][d] for level in LEVELS[1:]) for d in DTYPES}

    def as_dict(self):
        return {"dataflow": self.dataflow, "blocking": self.blocking.as_dict(),
                "blocking_text": str(self.blocking), "storage": self.storage.as_dict(),
                "counts": {k: dict(v) for k, v in self.counts.items()},
                "energy": {k: dict(v) for k, v in self.energy.items()},
                "total_energy": self.total_energy, "energy_per_mac": self.energy_per_mac,
                "macs": self.macs, "rf_words_used": self.rf_words_used,
                "glb_words_used": self.glb_words_used}


def _validate_blocking(layer, template, blocking, pes):
    if not isinstance(blocking, Blocking):
        raise TypeError(f"blocking must be a Blocking, not {blocking!r}")
    allowed = {"dram": DRAM_DIMS, "glb": DIMS, "spatial": template.spatial, "rf": template.rf}
    for level in BLOCK_LEVELS:
        loops = getattr(blocking, level)
        seen = set()
        for item in loops:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(f"Blocking level '{level}' entries must be (dim, factor) "
                                 f"pairs, not {item!r}")
            dim, f = item
            if dim not in allowed[level]:
                raise ValueError(f"{template.name} cannot map {dim!r} to the {level} level; "
                                 f"allowed: {', '.join(allowed[level]) or 'none'}")
            if not isinstance(f, int) or isinstance(f, bool) or f < 1:
                raise ValueError(f"Blocking factor of {dim} at {level} must be a positive "
                                 f"integer, not {f!r}")
            if dim in seen:
                raise ValueError(f"Blocking level '{level}' lists {dim} twice")
            seen.add(dim)
    rf_dims = [d for d, _ in blocking.rf]
    if rf_dims != [d for d in template.rf if d in rf_dims]:
        raise ValueError(f"{template.name} RF loops must follow the order "
                         f"{' '.join(template.rf)}, not {' '.join(rf_dims)}")
    dims = _group_dims(layer)
    for dim in DIMS:
        total = math.prod(blocking.factor(level, dim) for level in BLOCK_LEVELS)
        if total != dims[dim]:
            raise ValueError(f"Blocking factors of {dim} multiply to {total}, not the layer's "
                             f"{dims[dim]}" + (" (per group)" if dim in "MC" and
                                               layer.groups > 1 else ""))
    used = math.prod(f for _, f in blocking.spatial)
    if used > pes:
        raise ValueError(f"Blocking uses {used} PEs, more than pes={pes}")


def evaluate(layer, dataflow, blocking, *, storage=None, costs=None, check_capacity=True):
    """Access counts and energy of ``layer`` under ``dataflow`` with a given blocking.

    Parameters
    ----------
    layer : Layer
        The layer (any batch ``N``; grouped convolutions run group after group).
    dataflow : str
        A name of :data:`DATAFLOWS`.
    blocking : Blocking
        Factors per level; the dimensions each level may hold are the template's.
    storage : Storage, optional
        Default :func:`equal_area_storage` of ``dataflow``.
    costs : EnergyCosts, optional
        Default ``EnergyCosts()``.
    check_capacity : bool
        Raise if the blocking needs more RF or GLB words than ``storage`` has.

    Returns
    -------
    DataflowResult

    Raises
    ------
    TypeError, ValueError
        For a bad argument, a blocking that does not fit the layer or template, or (with
        ``check_capacity``) one that overflows the RF or GLB.
    """
    costs, storage = _check_arguments(layer, dataflow, costs, storage)
    template = TEMPLATES[dataflow]
    _validate_blocking(layer, template, blocking, storage.pes)

    u = layer.stride
    D, G = blocking.factors("dram"), blocking.factors("glb")
    P, L = blocking.factors("spatial"), blocking.factors("rf")
    PL = {d: P[d] * L[d] for d in DIMS}
    GPL = {d: G[d] * PL[d] for d in DIMS}
    dims = _group_dims(layer)
    steps = math.prod(D[d] * G[d] for d in DIMS)
    pes_used, rf_iters = math.prod(P.values()), math.prod(L.values())
    macs = steps * pes_used * rf_iters
    outputs = dims["N"] * dims["M"] * dims["E"] * dims["F"]
    dram_iters = math.prod(D.values())

    counts = {level: dict.fromkeys(DTYPES, 0) for level in LEVELS[1:]}
    rf_used = glb_used = 0
    for dtype in DTYPES:
        mode = template.modes[dtype]
        glb_tile = _cover(dtype, GPL, u)
        glb_used += glb_tile
        glb_fetches = dram_iters // _retention(blocking.dram, dtype)
        if mode == "rf":
            kept = _retention(blocking.glb, dtype)
            loads = steps // kept
            pe_tile, array_tile = _cover(dtype, L, u), _cover(dtype, PL, u)
            rf_used += pe_tile if kept > 1 else _stream_footprint(dataflow, dtype, L, pe_tile)
        elif mode == "bypass":
            window = _window_size(dtype, P, L, u)
        if dtype != "psum":
            if mode == "rf":
                counts["rf"][dtype] = macs
                counts["array"][dtype] = loads * pes_used * pe_tile
                counts["glb"][dtype] = loads * array_tile
            elif mode == "bypass":
                counts["array"][dtype] = macs
                counts["glb"][dtype] = steps * rf_iters * window
            else:
                counts["array"][dtype] = macs
                counts["glb"][dtype] = steps * _forward_reads(dtype, P, L, template.rf, u)
            counts["dram"][dtype] = glb_fetches * glb_tile
        else:
            if mode == "rf":
                stays = loads * pes_used * pe_tile          # PE residencies of a value
                writes = loads * array_tile                 # reduced sums into the GLB
                refills = writes - outputs
                counts["rf"][dtype] = 2 * macs - (stays - refills)
                counts["array"][dtype] = stays + refills
            elif mode == "bypass":
                writes = steps * rf_iters * window
                refills = writes - outputs
                counts["array"][dtype] = macs + refills
            else:
                raise AssertionError("partial sums are never forwarded")
            counts["glb"][dtype] = 2 * writes - outputs
            counts["dram"][dtype] = 2 * glb_fetches * glb_tile - outputs

    groups = layer.groups
    counts = {level: {d: v * groups for d, v in per.items()} for level, per in counts.items()}
    counts = {"mac": {"mac": macs * groups}, **counts}
    if check_capacity:
        if rf_used > storage.rf_words:
            raise ValueError(f"{dataflow} blocking needs {rf_used} RF words per PE, more than "
                             f"rf_bytes={storage.rf_bytes} holds ({storage.rf_words} words)")
        if glb_used > storage.glb_words:
            raise ValueError(f"{dataflow} blocking needs {glb_used} GLB words, more than "
                             f"glb_bytes={storage.glb_bytes} holds ({storage.glb_words} words)")
    return DataflowResult(dataflow=dataflow, layer=layer, blocking=blocking, storage=storage,
                          counts=counts, energy=_energy(counts, costs), rf_words_used=rf_used,
                          glb_words_used=glb_used)


def _energy(counts, costs):
    per = {"mac": costs.mac, "rf": costs.spad, "array": costs.array, "glb": costs.glb,
           "dram": costs.dram}
    return {level: {d: per[level] * v for d, v in counts[level].items()} for level in LEVELS}


# --------------------------------------------------------------------------------------------
# search


def _inner_mappings(name, dims, pes, rf_words):
    """Every spatial and RF factor choice of template ``name`` (divisors only) that fits."""
    N, M, C, E, F, R, S = (dims[d] for d in DIMS)
    div = _divisors
    if name == "RS":                      # R x e sets, t (filters) x r (channels) copies
        if R > pes or 2 * S + 1 > rf_words:
            return
        for e in div(E):
            for t in div(M):
                for r in div(C):
                    if R * e * t * r > pes:
                        break
                    for n in div(N):
                        for q in div(C // r):
                            for p in div(M // t):
                                if p * q * S + q * S + p > rf_words:
                                    break
                                yield ({"R": R, "E": e, "M": t, "C": r},
                                       {"N": n, "F": F, "C": q, "S": S, "M": p})
    elif name == "WS":                    # weights spread over PEs, a PE sweeps output rows
        if rf_words < 1:
            return
        for pr, ps in ([(R, S)] if R * S <= pes else []) + ([(1, 1)] if R * S > 1 else []):
            for pm in div(M):
                for pc in div(C):
                    if pr * ps * pm * pc > pes:
                        break
                    for lm in div(M // pm):
                        for lc in div(C // pc):
                            if lm * lc > rf_words:
                                break
                            for le in div(E):
                                yield ({"R": pr, "S": ps, "M": pm, "C": pc},
                                       {"M": lm, "C": lc, "E": le, "F": F})
    elif name in ("OSA", "OSB", "OSC"):   # one output per PE, reduced over C x R x S in place
        if rf_words < 1:
            return
        ms = (1,) if name == "OSA" else div(M)
        pix = (1,) if name == "OSC" else None
        for pm in ms:
            for pe in (pix or div(E)):
                for pf in (pix or div(F)):
                    if pm * pe * pf > pes:
                        break
                    for lc in div(C):
                        yield ({"M": pm, "E": pe, "F": pf}, {"C": lc, "R": R, "S": S})
    elif name == "NLR":                   # M x C multiply-add tree, nothing kept in PEs
        for pm in div(M):
            for pc in div(C):
                if pm * pc > pes:
                    break
                yield ({"M": pm, "C": pc}, {})


def _dram_loops(order, D):
    """``dram`` loops of factors ``D`` in group ``order`` (outermost first)."""
    return tuple((d, D[d]) for owner in order for d in _IRRELEVANT[owner]
                 if d in DRAM_DIMS and D[d] > 1)


def _glb_tiles(dims, u, glb_words, costs):
    """GLB tiles ``(n, m, c, e)`` that fit and cannot grow, with their best DRAM cost."""
    N, M, C, E, F, R, S = (dims[d] for d in DIMS)
    cols = _rows(F, S, u)
    fits = set()
    for n in _divisors(N):
        for m in _divisors(M):
            for e in _divisors(E):
                for c in _divisors(C):
                    use = m * c * R * S + n * c * _rows(e, R, u) * cols + n * m * e * F
                    if use > glb_words:
                        break
                    fits.add((n, m, c, e))
    full = (N, M, C, E)
    maximal = []
    for tile in sorted(fits):
        grows = False
        for k in range(4):
            # growing by the smallest prime factor left is the smallest growth: if it does not
            # fit, no growth along this loop does
            smallest = _divisors(full[k] // tile[k])[1:2]
            if smallest and tile[:k] + (tile[k] * smallest[0],) + tile[k + 1:] in fits:
                grows = True
                break
        if not grows:
            maximal.append(tile)
    outputs = N * M * E * F
    out = []
    for n, m, c, e in maximal:
        ext = {"N": n, "M": m, "C": c, "E": e, "F": F, "R": R, "S": S}
        D = {"N": N // n, "M": M // m, "C": C // c, "E": E // e, "F": 1, "R": 1, "S": 1}
        iters = math.prod(D.values())
        best = None
        for order in _ORDERS:
            loops = _dram_loops(order, D)
            words = 0
            for dtype in DTYPES:
                fetches = iters // _retention(loops, dtype)
                tile_words = _cover(dtype, ext, u)
                words += (2 * fetches * tile_words - outputs if dtype == "psum"
                          else fetches * tile_words)
            if best is None or words < best[0]:
                best = (words, loops)
        out.append(((n, m, c, e), best[0] * costs.dram, best[1]))
    return out


def _inner_constants(name, layer, dims, inners, costs):
    """Per PE-level mapping: the cost terms that do not depend on the GLB tile or loop order,
    and, per ``rf`` data type, the term divided by its retention and its RF footprints."""
    template = TEMPLATES[name]
    u = layer.stride
    K = len(inners)
    P = np.array([[p.get(d, 1) for d in DIMS] for p, _ in inners], dtype=np.int64)
    L = np.array([[l.get(d, 1) for d in DIMS] for _, l in inners], dtype=np.int64)
    PL = P * L
    full = np.array([dims[d] for d in DIMS], dtype=np.int64)
    rest = full // PL
    steps = rest.prod(axis=1).astype(np.float64)
    pes_used = P.prod(axis=1).astype(np.float64)
    macs = float(math.prod(full))
    outputs = float(dims["N"] * dims["M"] * dims["E"] * dims["F"])
    col = {d: i for i, d in enumerate(DIMS)}
    Ld = {d: L[:, col[d]] for d in DIMS}
    PLd = {d: PL[:, col[d]] for d in DIMS}
    ca, cr, cg = costs.array, costs.spad, costs.glb
    const = np.full(K, macs * costs.mac)
    scaled, full_fp, stream_fp = {}, {}, {}
    for dtype in DTYPES:
        mode = template.modes[dtype]
        if mode == "rf":
            tile = _cover(dtype, Ld, u, rows=_rows_np).astype(np.float64)
            array_tile = _cover(dtype, PLd, u, rows=_rows_np).astype(np.float64)
            full_fp[dtype] = tile
            stream_fp[dtype] = np.asarray(_stream_footprint(name, dtype, Ld, tile),
                                          dtype=np.float64) * np.ones(K)
            if dtype == "psum":
                scaled[dtype] = steps * (pes_used * tile * (ca - cr)
                                         + array_tile * (ca + cr + 2 * cg))
                const += 2 * macs * cr - outputs * (ca + cr + cg)
            else:
                scaled[dtype] = steps * (pes_used * tile * ca + array_tile * cg)
                const += macs * cr
            continue
        glb = np.empty(K)
        for k, (p, l) in enumerate(inners):
            if mode == "bypass":
                glb[k] = math.prod(l.values()) * _window_size(dtype, p, l, u)
            else:
                glb[k] = _forward_reads(dtype, p, l, template.rf, u)
        glb *= steps
        if dtype == "psum":
            const += (macs + glb - outputs) * ca + (2 * glb - outputs) * cg
        else:
            const += macs * ca + glb * cg
    return PL, rest, const, scaled, full_fp, stream_fp


def best_blocking(layer, dataflow, *, storage=None, costs=None):
    """The lowest-energy blocking of ``layer`` under ``dataflow`` that fits ``storage``.

    Parameters
    ----------
    layer : Layer
    dataflow : str
        A name of :data:`DATAFLOWS`.
    storage : Storage, optional
        Default :func:`equal_area_storage` of ``dataflow``.
    costs : EnergyCosts, optional
        Default ``EnergyCosts()``.

    Returns
    -------
    DataflowResult
        The winner, scored by :func:`evaluate`.

    Raises
    ------
    ValueError
        For a bad argument, or if no blocking fits the storage.
    """
    costs, storage = _check_arguments(layer, dataflow, costs, storage)
    template = TEMPLATES[dataflow]
    dims = _group_dims(layer)
    inners = list(_inner_mappings(dataflow, dims, storage.pes, storage.rf_words))
    tiles = _glb_tiles(dims, layer.stride, storage.glb_words, costs)
    if not inners or not tiles:
        raise ValueError(f"No {dataflow} blocking of this layer fits pes={storage.pes}, "
                         f"rf_bytes={storage.rf_bytes}, glb_bytes={storage.glb_bytes}")
    PL, rest, const, scaled, full_fp, stream_fp = _inner_constants(dataflow, layer, dims,
                                                                   inners, costs)
    col = {d: i for i, d in enumerate(DIMS)}
    tile_dims = np.array([t for t, _, _ in tiles], dtype=np.int64)          # (T, 4)
    dram_cost = np.array([c for _, c, _ in tiles])
    rf_types = [d for d in DTYPES if template.modes[d] == "rf"]
    best = (math.inf, None)
    chunk = max(1, 200_000 // len(tiles))
    for lo in range(0, len(inners), chunk):
        hi = min(len(inners), lo + chunk)
        ok = np.ones((hi - lo, len(tiles)), dtype=bool)
        G = {}
        for k, d in enumerate(DRAM_DIMS):
            step = PL[lo:hi, col[d]][:, None]
            fits = tile_dims[None, :, k] % step == 0
            ok &= fits
            G[d] = np.where(fits, tile_dims[None, :, k] // step, 1)
        for d in ("F", "R", "S"):
            G[d] = rest[lo:hi, col[d]][:, None]
        group_product = {owner: math.prod(G[d] for d in dims_) for owner, dims_ in
                         _IRRELEVANT.items()}
        base = const[lo:hi, None] + dram_cost[None, :]
        for order in _ORDERS:
            cost = base.copy()
            footprint = np.zeros_like(base)
            for dtype in rf_types:
                kept = np.ones_like(base)
                open_ = np.ones(base.shape, dtype=bool)
                for owner in reversed(order):
                    gp = group_product[owner]
                    if owner == dtype:
                        kept = np.where(open_, kept * gp, kept)
                    else:
                        open_ &= gp == 1
                cost += scaled[dtype][lo:hi, None] / kept
                footprint += np.where(kept > 1, full_fp[dtype][lo:hi, None],
                                      stream_fp[dtype][lo:hi, None])
            cost = np.where(ok & (footprint <= storage.rf_words), cost, np.inf)
            flat = int(np.argmin(cost))
            value = cost.flat[flat]
            if value < best[0]:
                i, j = divmod(flat, len(tiles))
                best = (value, (lo + i, j, order))
    if best[1] is None:
        raise ValueError(f"No {dataflow} blocking of this layer fits pes={storage.pes}, "
                         f"rf_bytes={storage.rf_bytes}, glb_bytes={storage.glb_bytes}")
    i, j, order = best[1]
    P, L = inners[i]
    (n, m, c, e), _, dram_loops = tiles[j]
    tile = {"N": n, "M": m, "C": c, "E": e}
    G = {d: (tile[d] if d in tile else dims[d]) // (P.get(d, 1) * L.get(d, 1)) for d in DIMS}
    blocking = Blocking(
        dram=dram_loops,
        glb=tuple((d, G[d]) for owner in order for d in _IRRELEVANT[owner] if G[d] > 1),
        spatial=tuple((d, P[d]) for d in template.spatial if P.get(d, 1) > 1),
        rf=tuple((d, L[d]) for d in template.rf if L.get(d, 1) > 1))
    result = evaluate(layer, dataflow, blocking, storage=storage, costs=costs)
    predicted = best[0] * layer.groups
    if not math.isclose(result.total_energy, predicted, rel_tol=1e-9):
        raise AssertionError(f"search predicted {predicted} but evaluate gives "
                             f"{result.total_energy} for {dataflow} {blocking}")
    return result


def compare_dataflows(layer, *, pes=256, costs=None, dataflows=DATAFLOWS, storage=None,
                      rf_area_ratio=2.0):
    """Every dataflow's best blocking of ``layer`` on the same PE count and storage area.

    Parameters
    ----------
    layer : Layer
    pes : int
        Processing elements (the same for every dataflow).
    costs : EnergyCosts, optional
        Default ``EnergyCosts()`` (MAC 1, RF 1, array 2, GLB 6, DRAM 200).
    dataflows : sequence of str
        Names of :data:`DATAFLOWS` to compare.
    storage : dict, optional
        Dataflow name -> :class:`Storage` replacing its :func:`equal_area_storage`.
    rf_area_ratio : float
        Area of one RF byte in GLB bytes, for :func:`equal_area_storage`.

    Returns
    -------
    dict
        Dataflow name -> :class:`DataflowResult`, in the order of ``dataflows``.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, or a dataflow no blocking of which fits its storage.
    """
    _check_layer(layer)
    costs = _check_costs(costs)
    if isinstance(dataflows, str) or not dataflows:
        raise ValueError(f"dataflows must be a non-empty sequence of names, not {dataflows!r}")
    for name in dataflows:
        _check_dataflow(name)
    storage = dict(storage or {})
    for name, value in storage.items():
        _check_dataflow(name)
        if not isinstance(value, Storage):
            raise TypeError(f"storage[{name!r}] must be a Storage, not {value!r}")
        if value.pes != pes:
            raise ValueError(f"storage[{name!r}] has pes={value.pes}, not pes={pes}")
    out = {}
    for name in dataflows:
        st = storage.get(name) or equal_area_storage(name, pes=pes, rf_area_ratio=rf_area_ratio)
        out[name] = best_blocking(layer, name, storage=st, costs=costs)
    return out
