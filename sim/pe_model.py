"""Golden model of one processing element: stream orders, results, counters and random cases.

Shared by the Amaranth-simulator tests and the cocotb testbench so both simulators run the same
cases against the same expectations. numpy only.
"""

from dataclasses import dataclass

import numpy as np

from .golden import conv1d_row

__all__ = ["PECase", "make_pe_case", "filter_stream", "filter_words", "ifmap_stream", "psum_stream",
           "psum_groups", "pack_psum_group", "unpack_psum_group", "ungroup_psums",
           "psum_in_words", "psum_transfers", "psum_out_from_words",
           "expected_psum_out", "expected_counters", "issued_slots", "pe_limits_ok"]


@dataclass(frozen=True)
class PECase:
    """One PE job: load ``filters`` then convolve ``ifmap`` row by row.

    Attributes
    ----------
    filters : ndarray (p, q, S)
    ifmap : ndarray (rows, q, row_len) with ``row_len = (F - 1) * stride + S``
    psum_in : ndarray (rows, F, p) or None when the PE starts from zero
    stride : int
    seed : int
        Seed the case was drawn from (printed on failure).
    """
    filters: np.ndarray
    ifmap: np.ndarray
    psum_in: np.ndarray | None
    stride: int
    seed: int

    @property
    def p(self):
        return self.filters.shape[0]

    @property
    def q(self):
        return self.filters.shape[1]

    @property
    def s(self):
        return self.filters.shape[2]

    @property
    def rows(self):
        return self.ifmap.shape[0]

    @property
    def width(self):
        """Outputs per row, F."""
        return (self.ifmap.shape[2] - self.s) // self.stride + 1

    def describe(self):
        return (f"seed={self.seed} p={self.p} q={self.q} S={self.s} U={self.stride} "
                f"F={self.width} rows={self.rows} psum_in={self.psum_in is not None} "
                f"zeros={float(np.mean(self.ifmap == 0)):.2f}")


def pe_limits_ok(config, p, q, s, stride, width):
    """True when the PE of ``config`` can run this job (the spad and counter limits)."""
    return (p * q * s <= config.filter_spad_depth and q * s <= config.ifmap_spad_depth
            and p <= config.psum_spad_depth and 1 <= stride <= config.max_stride
            and 1 <= width <= config.max_ofmap_width)


def make_pe_case(config, seed, *, max_width=10, max_rows=3, sparsity=None):
    """Draw a random legal PE job for ``config`` from ``seed``.

    ``sparsity`` (fraction of zero ifmap values) is drawn from 0-0.9 when not given. Values span
    the full signed ``data_width`` range so products and sums exercise wrap-around.
    """
    rng = np.random.default_rng(seed)
    while True:
        # mostly small filters (several windows per row), sometimes the whole ifmap spad
        s = int(rng.integers(1, min(5, config.ifmap_spad_depth) + 1) if rng.random() < 0.8
                else rng.integers(1, config.ifmap_spad_depth + 1))
        q_max = min(config.ifmap_spad_depth, config.filter_spad_depth) // s
        if q_max < 1:
            continue
        q = int(rng.integers(1, q_max + 1))
        p = int(rng.integers(1, min(config.psum_spad_depth,
                                    config.filter_spad_depth // (q * s)) + 1))
        stride = int(rng.integers(1, min(config.max_stride, 4) + 1))
        width = int(rng.integers(1, min(max_width, config.max_ofmap_width) + 1))
        if pe_limits_ok(config, p, q, s, stride, width):
            break
    rows = int(rng.integers(1, max_rows + 1))
    if sparsity is None:
        sparsity = float(rng.choice([0.0, 0.3, 0.6, 0.9]))
    lo, hi = -(1 << (config.data_width - 1)), (1 << (config.data_width - 1))
    row_len = (width - 1) * stride + s
    filters = rng.integers(lo, hi, size=(p, q, s))
    ifmap = rng.integers(lo, hi, size=(rows, q, row_len))
    ifmap[rng.random(ifmap.shape) < sparsity] = 0
    psum_in = None
    if rng.random() < 0.7:
        alo, ahi = -(1 << (config.acc_width - 1)), (1 << (config.acc_width - 1))
        psum_in = rng.integers(alo, ahi, size=(rows, width, p), dtype=np.int64)
    return PECase(filters=filters.astype(np.int64), ifmap=ifmap.astype(np.int64),
                  psum_in=psum_in, stride=stride, seed=seed)


def filter_stream(filters):
    """Filter values in the PE's load order: ``s`` outermost, then channel, then filter."""
    return [int(v) for v in np.transpose(filters, (2, 1, 0)).reshape(-1)]


def filter_words(config, filters, pad=0):
    """The ``filt`` transfers that load ``filters`` (p, q, S) into a PE of ``config``:
    :func:`filter_stream`'s values in groups of ``config.filter_group`` as raw bits (value 0
    in the low bits, :func:`~rsaccel.hw.pe.FilterGroup`), the last group filled up with
    ``pad``; the plain values when the group is 1."""
    values = filter_stream(filters)
    g = config.filter_group
    if g == 1:
        return values
    values += [pad] * (-len(values) % g)
    return [pack_psum_group(values[i:i + g], config.data_width)
            for i in range(0, len(values), g)]


def ifmap_stream(ifmap):
    """Ifmap values of ``(rows, q, row_len)``: per row, per position, the ``q`` channels."""
    return [int(v) for v in np.transpose(ifmap, (0, 2, 1)).reshape(-1)]


def psum_stream(psum):
    """Psums of ``(rows, F, p)`` in stream order (filter index innermost)."""
    return [int(v) for v in np.asarray(psum).reshape(-1)]


def psum_groups(values, p, group):
    """A flat psum stream (outputs of ``p`` filters each, filter innermost) as the transfers
    that carry it: tuples of ``group`` consecutive filters' psums of one output, the last of
    each output padded with zeros (:func:`~rsaccel.hw.pe.PsumGroup`)."""
    values = [int(v) for v in values]
    if len(values) % p:
        raise ValueError(f"{len(values)} psums are not whole outputs of p={p}")
    out = []
    for start in range(0, len(values), p):
        for i in range(0, p, group):
            part = values[start + i:start + min(i + group, p)]
            out.append(tuple(part + [0] * (group - len(part))))
    return out


def pack_psum_group(values, acc_width):
    """Raw bits of one psum transfer (value 0 in the low bits)."""
    mask = (1 << acc_width) - 1
    return sum((int(v) & mask) << (i * acc_width) for i, v in enumerate(values))


def unpack_psum_group(bits, group, acc_width):
    """The ``group`` signed psums of a transfer's raw bits."""
    out = []
    for i in range(group):
        v = (int(bits) >> (i * acc_width)) & ((1 << acc_width) - 1)
        out.append(v - (1 << acc_width) if v >> (acc_width - 1) else v)
    return tuple(out)


def ungroup_psums(groups, rows, width, p):
    """``(rows, width, p)`` psums from the transfers (tuples) of :func:`psum_groups`; raises
    ValueError if a pad value is not zero or the count is wrong."""
    group = len(groups[0]) if groups else 1
    per_output = -(-p // group)
    if len(groups) != rows * width * per_output:
        raise ValueError(f"Expected {rows * width * per_output} psum transfers, "
                         f"got {len(groups)}")
    flat = np.array(groups, dtype=np.int64).reshape(rows, width, per_output * group)
    if np.any(flat[:, :, p:]):
        raise ValueError("A psum transfer's pad values are not zero")
    return flat[:, :, :p]


def psum_in_words(config, case):
    """Raw bits of the ``psum_in`` transfers of ``case`` (empty without ``psum_in``)."""
    if case.psum_in is None:
        return []
    return [pack_psum_group(g, config.acc_width)
            for g in psum_groups(psum_stream(case.psum_in), case.p, config.psum_group)]


def psum_transfers(config, case):
    """Number of ``psum_out`` transfers ``case`` produces."""
    return case.rows * case.width * -(-case.p // config.psum_group)


def psum_out_from_words(config, case, words):
    """``(rows, F, p)`` psums from the raw bits of ``case``'s ``psum_out`` transfers (see
    :func:`ungroup_psums`)."""
    groups = [unpack_psum_group(w, config.psum_group, config.acc_width) for w in words]
    return ungroup_psums(groups, case.rows, case.width, case.p)


def expected_psum_out(case, acc_width):
    """``(rows, F, p)`` psum outputs of ``case`` from the golden row convolution."""
    out = []
    for r in range(case.rows):
        psum = (case.psum_in[r] if case.psum_in is not None
                else np.zeros((case.width, case.p), dtype=np.int64))
        out.append(conv1d_row(case.ifmap[r], case.filters, psum, stride=case.stride,
                              acc_width=acc_width))
    return np.stack(out)


def _window_zeros(case):
    """``zero[r, f, j]``: the ifmap operand of slot ``j = s*q + c`` of output ``f`` in row ``r``
    is zero (slots in the PE's issue order, ``s`` major, channel minor)."""
    idx = np.arange(case.width)[:, None] * case.stride + np.arange(case.s)[None, :]  # (F, S)
    operands = case.ifmap[:, :, idx]                                 # (rows, q, F, S)
    return np.transpose(operands == 0, (0, 2, 3, 1)).reshape(case.rows, case.width,
                                                             case.s * case.q)


def issued_slots(case, *, zero_skipping):
    """``(rows, F)`` number of slots ``j`` (of ``p`` MACs each) the PE issues per window.

    Without skipping every one of the ``q*S``; with skipping the non-zero ones, or one (the
    last, gated) for a window of zeros.
    """
    zero = _window_zeros(case)
    n = zero.shape[2]
    if not zero_skipping:
        return np.full(zero.shape[:2], n, dtype=np.int64)
    nonzero = (~zero).sum(axis=2)
    return np.maximum(nonzero, 1).astype(np.int64)


def expected_counters(case, *, zero_gating, zero_skipping=False):
    """Exact PE counter values after loading the filters once and running ``case``.

    Follows the access rules of :class:`rsaccel.hw.pe.ProcessingElement`: per output and filter
    the ``q*S`` slots run ``s``-major, ``c``-minor; the first slot does not read the psum spad,
    the last does not write it, and a gated slot in between touches neither. With
    ``zero_skipping`` only the issued slots (:func:`issued_slots`) touch the ifmap and psum
    spads: the first issued one does not read the psum spad, the last does not write it.
    """
    if zero_skipping and not zero_gating:
        raise ValueError("zero_skipping requires zero_gating")
    p, q, s, u = case.p, case.q, case.s, case.stride
    zero = _window_zeros(case)
    if not zero_gating:
        zero = np.zeros_like(zero)
    slots = zero.size * p
    gated = int(zero.sum()) * p
    row_len = case.ifmap.shape[2]
    needed_positions = int(np.sum(np.arange(row_len) % u < s))
    counts = {
        "macs": slots - gated,
        "gated_macs": gated,
        "filter_spad_reads": slots - gated,
        "filter_spad_writes": p * q * s,
        "ifmap_spad_writes": case.rows * q * needed_positions,
    }
    if zero_skipping:
        issued = issued_slots(case, zero_skipping=True)
        counts["ifmap_spad_reads"] = int(issued.sum()) * p
        counts["psum_spad_reads"] = int((issued - 1).sum()) * p
        counts["psum_spad_writes"] = int((issued - 1).sum()) * p
        return counts
    n = s * q
    is_first = np.zeros(n, bool)
    is_first[0] = True
    is_last = np.zeros(n, bool)
    is_last[-1] = True
    reads = (~is_first) & (~zero | is_last)
    writes = (~is_last) & (~zero | is_first)
    counts["ifmap_spad_reads"] = slots
    counts["psum_spad_reads"] = int(reads.sum()) * p
    counts["psum_spad_writes"] = int(writes.sum()) * p
    return counts


def pe_commands(config, case, window=None):
    """Command dictionaries that load ``case``'s filters and run its rows.

    ``window`` (ifmap ring positions) defaults to the largest, ``ifmap_spad_depth // q``.
    """
    common = dict(s=case.s, p=case.p, q=case.q, stride=case.stride, width=case.width,
                  psum_in_en=int(case.psum_in is not None),
                  window=window or config.ifmap_spad_depth // case.q)
    return [dict(op="LOAD_FILTERS", rows=0, **common), dict(op="RUN", rows=case.rows, **common)]


def pack_command(layout, command):
    """Bits of ``command`` (a dict; ``op`` by name) in the PE command ``layout`` as an int."""
    from ..hw.pe import PEOp
    fields = dict(command)
    fields["op"] = PEOp[fields["op"]]
    return layout.const(fields).as_bits()


#: Seeds of the random PE cases every simulator runs (Amaranth, Icarus, Verilator).
PE_TEST_SEEDS = range(40)

_STREAMS = ("cmd", "filt", "ifmap", "psum_in", "psum_out")


def stall_profile(seed):
    """Per-stream stall probabilities drawn from ``seed``: from none to heavy (0.8) each."""
    rng = np.random.default_rng(seed + 7919)
    return {name: float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.8])) for name in _STREAMS}


def directed_pe_cases(config):
    """Corner cases the random generator rarely draws, by name, for ``config``.

    ``full_filter_spad``: ``p*q*S`` equal to the filter spad; ``max_width``: ``F`` =
    ``max_ofmap_width``; ``max_stride``: ``U`` = ``max_stride`` with ``S < U``; ``stride_equals_s``;
    ``single_mac``: p = q = S = F = 1.
    """
    rng = np.random.default_rng(4242)
    lo, hi = -(1 << (config.data_width - 1)), 1 << (config.data_width - 1)
    alo, ahi = -(1 << (config.acc_width - 1)), 1 << (config.acc_width - 1)

    def case(p, q, s, stride, width, rows, psum, seed, zeros=0.3):
        ifmap = rng.integers(lo, hi, size=(rows, q, (width - 1) * stride + s))
        ifmap[rng.random(ifmap.shape) < zeros] = 0
        return PECase(filters=rng.integers(lo, hi, size=(p, q, s)), ifmap=ifmap,
                      psum_in=rng.integers(alo, ahi, size=(rows, width, p)) if psum else None,
                      stride=stride, seed=seed)

    cases = {}
    depth, spad = config.filter_spad_depth, config.ifmap_spad_depth
    # largest p*q*S <= filter spad with q*S <= ifmap spad and p <= psum spad
    best = max(((p, q, s) for s in range(1, spad + 1) for q in range(1, spad // s + 1)
                for p in range(1, config.psum_spad_depth + 1) if p * q * s <= depth),
               key=lambda t: (t[0] * t[1] * t[2], t[2]))
    cases["full_filter_spad"] = case(*best, stride=1, width=3, rows=1, psum=True, seed=9001)
    cases["max_width"] = case(1, 1, 1, 1, config.max_ofmap_width, 1, True, 9002)
    if config.max_stride > 1:
        cases["max_stride"] = case(2, 1, max(1, min(spad, config.max_stride - 1)),
                                   config.max_stride, 4, 2, False, 9003)
    cases["stride_equals_s"] = case(1, 2, 2, 2, 5, 2, True, 9004)
    cases["single_mac"] = case(1, 1, 1, 1, 1, 3, True, 9005, zeros=0.0)
    return cases
