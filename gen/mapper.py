"""Row-stationary mapper: enumerates the legal mappings of a layer and picks the best one.

A mapping (:class:`~rsaccel.gen.compiler.Mapping`) places ``t`` PE sets of ``R`` rows by ``e``
columns (``e`` output rows of a strip) on the array, ``t/h`` stacked rows of ``h`` sets side by
side, each PE interleaving ``p`` filters and
``q`` channels, with ``n`` images per pass; each of the ``t`` is ``r`` sets on different
channels whose psums add up in the array (Eyeriss's ``r``), so a pass covers ``r*q`` channels
and moves ``1/r`` as many psums per MAC through the psum networks. The pass order is fixed by the compiler: group,
image run, strip, filter block, then channel chunk (innermost, its psums accumulating in the
global buffer). The global buffer's data banks hold, per block, the psums (in place), the
outputs, the bias and the ifmap rows of one chunk (of two chunks where they fit, so the
next chunk's rows are written during a pass: :func:`~rsaccel.gen.compiler.ifmap_regions`);
the filter banks hold one chunk's filters.

:func:`check_mapping` names the first limit a mapping breaks; :func:`candidate_mappings` lists
the legal ones (for each number of blocks along a dimension only the smallest size that gives
it, so no candidate just pads more); :func:`choose_mapping` scores each with
:mod:`rsaccel.sim.perf_model` and returns the best for an objective.
"""

import math

from .compiler import (LayerError, Mapping, _buffer_words, _check_fits, batch_rows_problem,
                       buffer_split, channel_set_problem)
from ..hw.pe import MAX_PE_ROWS
from ..sim.perf_model import ZeroStats, model_layer

__all__ = ["OBJECTIVES", "check_mapping", "candidate_mappings", "choose_mapping",
           "mapping_buffer_split"]

OBJECTIVES = ("energy", "cycles")


def _balanced_sizes(total, limit):
    """For each block count ``k``, the smallest size ``<= limit`` that splits ``total`` into
    ``k`` blocks."""
    sizes = set()
    for size in range(1, min(total, limit) + 1):
        sizes.add(math.ceil(total / math.ceil(total / size)))
    return sorted(sizes)


def mapping_buffer_split(config, layer, mapping):
    """Global-buffer words per region a block of ``mapping`` uses
    (:func:`~rsaccel.gen.compiler.buffer_split`)."""
    mp = mapping
    return buffer_split(config, layer, mp.e, mp.n, mp.q, mp.p, mp.t, mp.r, mp.h)


def check_mapping(config, layer, mapping):
    """Raise :class:`~rsaccel.gen.compiler.LayerError` naming the first limit ``mapping``
    breaks for ``layer`` on ``config``; return ``None`` if it is legal."""
    layer.validate()
    _check_fits(config, layer)
    _check_mapping_limits(config, layer, mapping)


def _check_mapping_limits(c, layer, mp):
    """:func:`check_mapping` for a layer already validated and known to fit the array."""
    for name in ("e", "t", "p", "q", "n", "r", "h"):
        value = getattr(mp, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LayerError(f"Mapping field '{name}' must be a positive integer, not {value!r}")
    problem = _first_broken_limit(c, layer, mp)
    if problem:
        raise LayerError(f"Mapping {_describe(mp)}: {problem}")
    need, fneed = _buffer_words(c, layer, mp.e, mp.n, mp.q, mp.p, mp.t, mp.r, mp.h)
    data_words = c.glb_banks * c.glb_bank_depth
    filter_words = c.filter_region_words
    if need > data_words:
        raise LayerError(f"Mapping {_describe(mp)}: needs {need} global-buffer data words, "
                         f"more than the {data_words} of glb_banks*glb_bank_depth")
    if fneed > filter_words:
        raise LayerError(f"Mapping {_describe(mp)}: needs {fneed} filter words, more than "
                         f"the {filter_words} of the filter banks")


def _first_broken_limit(c, layer, mp):
    """The message of the first array, spad, NoC-ID or counter limit ``mp`` breaks, or None."""
    R, S, U, F = layer.R, layer.S, layer.stride, layer.F
    cg, mg = layer.C // layer.groups, layer.M // layer.groups
    if mp.e > layer.E:
        return f"e={mp.e} exceeds the layer's output rows E={layer.E}"
    if mp.t % mp.h:
        return f"h={mp.h} sets side by side do not divide the t={mp.t} sets"
    if mp.h * mp.e > c.cols:
        return f"h*e={mp.h * mp.e} exceeds the array width cols={c.cols}"
    if mp.t // mp.h * mp.r * R > c.rows:
        return (f"(t/h)*r*R={mp.t // mp.h * mp.r * R} exceeds the array height "
                f"rows={c.rows}")
    problem = channel_set_problem(layer, mp)
    if problem:
        return problem
    if mp.n > layer.N:
        return f"n={mp.n} exceeds the batch N={layer.N}"
    problem = batch_rows_problem(mp)
    if problem:
        return problem
    if mp.q > cg:
        return f"q={mp.q} exceeds the channels per group C/groups={cg}"
    if (mp.t - 1) * mp.p >= mg:
        return f"t={mp.t} sets of p={mp.p} filters leave a set empty (M/groups={mg})"
    if mp.q * S > c.ifmap_spad_depth:
        return f"q*S={mp.q * S} exceeds ifmap_spad_depth={c.ifmap_spad_depth}"
    if mp.p * mp.q * S > c.filter_spad_depth:
        return f"p*q*S={mp.p * mp.q * S} exceeds filter_spad_depth={c.filter_spad_depth}"
    if mp.p > c.psum_spad_depth:
        return f"p={mp.p} exceeds psum_spad_depth={c.psum_spad_depth}"
    rows_in = (mp.e - 1) * U + R
    if rows_in > 1 << c.noc_id_width:
        return (f"a strip of e={mp.e} reads {rows_in} ifmap rows, more than the "
                f"{1 << c.noc_id_width} IDs of noc_id_width={c.noc_id_width}")
    for what, count in (("filter values per PE row", mp.p * mp.q * S),
                        ("ifmap positions per row", (F - 1) * U + S),
                        ("psums per output row", F * mp.n),
                        ("images per pass", mp.n)):
        if count >= 1 << c.nest_count_width:
            return (f"{what} ({count}) exceed the loop nests' {c.nest_count_width}-bit "
                    f"counters")
    return None


def _describe(mp):
    return f"e={mp.e} t={mp.t} p={mp.p} q={mp.q} n={mp.n} r={mp.r} h={mp.h}"


def candidate_mappings(config, layer):
    """Every legal mapping worth scoring (see the module docstring), in a stable order.

    Raises :class:`~rsaccel.gen.compiler.LayerError` naming the limit when there is none.
    """
    layer.validate()
    _check_fits(config, layer)
    c = config
    R, S = layer.R, layer.S
    cg, mg = layer.C // layer.groups, layer.M // layer.groups
    out = []
    q_max = min(cg, c.ifmap_spad_depth // S, c.filter_spad_depth // S)
    for q in _balanced_sizes(cg, q_max):
        # channel sets: r > 1 only where r*q divides the channels
        rs = [1] + [r for r in range(2, c.rows // R + 1) if cg % (r * q) == 0]
        for r in rs:
            # tv stacked rows of h sets side by side
            shapes = [(tv * h, h) for h in range(1, c.cols + 1)
                      for tv in range(1, c.rows // (r * R) + 1) if tv * h <= mg]
            for t, h in shapes:
                p_max = min(c.psum_spad_depth, c.filter_spad_depth // (q * S))
                for p in _balanced_sizes(math.ceil(mg / t), p_max):
                    if (t - 1) * p >= mg:
                        continue
                    for e in _balanced_sizes(layer.E, c.cols // h):
                        for n in _balanced_sizes(layer.N, MAX_PE_ROWS):
                            mp = Mapping(e=e, t=t, p=p, q=q, n=n, r=r, h=h,
                                         active_pes=t * r * R * e)
                            try:
                                _check_mapping_limits(c, layer, mp)
                            except LayerError:
                                continue
                            out.append(mp)
    if not out:
        # the smallest mapping breaks the limit that rules out every other one
        check_mapping(c, layer, Mapping(e=1, t=1, p=1, q=1, n=1, active_pes=R))
        raise LayerError("No legal mapping")     # pragma: no cover (the check raises)
    return out


def choose_mapping(config, layer, *, objective="energy", ifmap=None, zero_fraction=0.0,
                   costs=None, stream_words_per_cycle=1.0, cycle_model="estimate", refine=1):
    """The best legal mapping of ``layer`` for ``objective`` and its model.

    ``objective`` is ``"energy"`` (ties broken by cycles) or ``"cycles"`` (ties broken by
    energy). Candidates are ranked with the model's fast cycle estimate. With ``refine = K > 1``
    the ``K`` best of that ranking are scored again with the exact model (which steps every
    distinct RUN pass, see :func:`~rsaccel.sim.perf_model.model_layer`) and the best of those
    wins: the estimate misses the chain lag and the coupling between the networks, so on big
    layers it can be several per cent low and rank two close mappings the wrong way round.
    Each refined candidate costs one exact model (seconds on AlexNet's layers). The returned
    model of the winner uses ``cycle_model`` (``"exact"`` whenever ``refine > 1``). Returns
    ``(mapping, model, candidates)`` with ``model`` a
    :class:`~rsaccel.sim.perf_model.LayerModel` and ``candidates`` the number scored.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"Objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 1:
        raise ValueError(f"refine must be an integer of at least 1, not {refine!r}")
    candidates = candidate_mappings(config, layer)
    zeros = ZeroStats(layer, ifmap, zero_fraction)

    def score(mp, how):
        model = model_layer(config, layer, mp, zeros=zeros, costs=costs,
                            stream_words_per_cycle=stream_words_per_cycle, cycle_model=how)
        energy, cycles = model.total_energy, model.cycles
        return ((energy, cycles) if objective == "energy" else (cycles, energy)), model

    # candidates come in a fixed order and sorting is stable, so ties keep the first one
    ranked = sorted((score(mp, "estimate") for mp in candidates), key=lambda s: s[0])
    if refine > 1:
        best = min((score(model.mapping, "exact") for _, model in ranked[:refine]),
                   key=lambda s: s[0])[1]
    else:
        best = ranked[0][1]
        if cycle_model != "estimate":
            best = score(best.mapping, cycle_model)[1]
    return best.mapping, best, len(candidates)
