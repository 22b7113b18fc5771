"""Programs for the PE array and their expected results (numpy only).

:func:`single_pass_program` maps a convolution that fits one processing pass onto the array as
one row-stationary PE set (filter rows down the array rows, output rows across the columns,
psums accumulated up each column) and lists everything the array's streams must carry. Both the
Amaranth-simulator tests and the cocotb testbench drive the array from such a program.
"""

from dataclasses import dataclass, field

import numpy as np

from .golden import conv2d_acc
from .pe_model import filter_words, pack_psum_group, psum_groups

__all__ = ["ArrayProgram", "single_pass_program", "array_pass_fits", "encode_program",
           "random_layer", "ARRAY_TEST_CASES", "array_case_program"]

from ..gen.compiler import PSUM_BELOW, PSUM_GIN, PSUM_ZERO


@dataclass
class ArrayProgram:
    """Stream contents for one array pass.

    Attributes
    ----------
    cfg : list of dict
        Configuration writes (``target`` by name, ``row``, ``col``, ``value``).
    cmds : list of dict
        PE commands broadcast to the enabled PEs.
    filt, ifmap, psum : list of (row_tag, col_tag, value)
        Values for the three input networks, in sending order (a psum ``value`` is a tuple
        of ``psum_group`` psums, one transfer).
    expected : dict[(row, col)] -> list of tuple
        Psum transfers (tuples of ``psum_group`` psums, pad values zero) each output PE must
        send on the output network, in order.
    """
    cfg: list = field(default_factory=list)
    cmds: list = field(default_factory=list)
    filt: list = field(default_factory=list)
    ifmap: list = field(default_factory=list)
    psum: list = field(default_factory=list)
    expected: dict = field(default_factory=dict)

    @property
    def output_count(self):
        return sum(len(v) for v in self.expected.values())


def array_pass_fits(config, *, C, M, H, W, R, S, stride):
    """``None`` if the layer fits one pass of one PE set, else the name of the limit it breaks."""
    E = (H - R) // stride + 1
    F = (W - S) // stride + 1
    if R > config.rows:
        return f"R={R} exceeds rows={config.rows}"
    if E > config.cols:
        return f"E={E} exceeds cols={config.cols}"
    if C * S > config.ifmap_spad_depth:
        return f"q*S={C * S} exceeds ifmap_spad_depth={config.ifmap_spad_depth}"
    if M > config.psum_spad_depth:
        return f"p={M} exceeds psum_spad_depth={config.psum_spad_depth}"
    if M * C * S > config.filter_spad_depth:
        return f"p*q*S={M * C * S} exceeds filter_spad_depth={config.filter_spad_depth}"
    if stride > config.max_stride:
        return f"stride={stride} exceeds max_stride={config.max_stride}"
    if F > config.max_ofmap_width:
        return f"F={F} exceeds max_ofmap_width={config.max_ofmap_width}"
    if (R - 1) + (E - 1) * stride >= (1 << config.noc_id_width):
        return f"ifmap row IDs up to {(R - 1) + (E - 1) * stride} need more than " \
               f"noc_id_width={config.noc_id_width} bits"
    if E < 1 or F < 1:
        return "the filter is larger than the input"
    return None


def single_pass_program(config, ifmap, weights, bias=None, *, stride=1):
    """Program computing ``conv2d_acc`` of ``ifmap`` (N, C, H, W) in one array pass.

    PE ``(i, j)`` holds filter row ``i`` of all ``M`` filters and ``C`` channels (p = M,
    q = C) and convolves ifmap row ``i + j*stride`` into a psum row of output row ``j``; the
    bottom PE of each column starts from the bias (psum network) or zero, the top one sends
    output row ``j`` to the output network. Ifmap values are multicast along the diagonals,
    position by position across all rows, which keeps every PE supplied (no deadlock with the
    PEs' small windows).
    """
    ifmap = np.asarray(ifmap, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    N, C, H, W = ifmap.shape
    M, _, R, S = weights.shape
    problem = array_pass_fits(config, C=C, M=M, H=H, W=W, R=R, S=S, stride=stride)
    if problem:
        raise ValueError(f"Layer does not fit one array pass: {problem}")
    E = (H - R) // stride + 1
    F = (W - S) // stride + 1
    prog = ArrayProgram()
    psum_src_bottom = PSUM_ZERO if bias is None else PSUM_GIN
    for i in range(config.rows):
        prog.cfg.append(dict(target="FILT_ROW_ID", row=i, col=0, value=i if i < R else 0))
        prog.cfg.append(dict(target="IFMAP_ROW_ID", row=i, col=0, value=0))
        prog.cfg.append(dict(target="PSUM_ROW_ID", row=i, col=0, value=i if i < R else 0))
        for j in range(config.cols):
            used = i < R and j < E
            src = psum_src_bottom if i == R - 1 else PSUM_BELOW
            prog.cfg.append(dict(target="PE_MODE", row=i, col=j,
                                 value=int(used) | ((src if used else PSUM_ZERO) << 1)))
            prog.cfg.append(dict(target="FILT_COL_ID", row=i, col=j, value=0))
            prog.cfg.append(dict(target="IFMAP_COL_ID", row=i, col=j,
                                 value=(i + j * stride) if used else 0))
            prog.cfg.append(dict(target="PSUM_COL_ID", row=i, col=j, value=j))
    common = dict(s=S, p=M, q=C, stride=stride, width=F, psum_in_en=1,
                  window=config.ifmap_spad_depth // C)
    prog.cmds = [dict(op="CLEAR", rows=0, **common), dict(op="LOAD_FILTERS", rows=0, **common),
                 dict(op="RUN", rows=N, **common)]
    for i in range(R):
        prog.filt += [(i, 0, v) for v in filter_words(config, weights[:, :, i, :])]
    used_rows = sorted({i + j * stride for i in range(R) for j in range(E)})
    for n in range(N):
        for x in range(W):
            for h in used_rows:
                prog.ifmap += [(0, h, int(ifmap[n, c, h, x])) for c in range(C)]
    if bias is not None:
        bias = np.asarray(bias, dtype=np.int64)
        # output-major across the columns, like the ifmap sweep: a column-major order would
        # leave the other columns without psums while the shared ifmap rows wait for them
        for n in range(N):
            for f in range(F):
                for j in range(E):
                    prog.psum += [(R - 1, j, grp)
                                  for grp in psum_groups(bias, M, config.psum_group)]
    acc = conv2d_acc(ifmap, weights, bias if bias is not None else np.zeros(M, np.int64),
                     stride=stride, data_width=config.data_width, acc_width=config.acc_width)
    for j in range(E):
        # output row j of every image: f-major, filter-minor
        prog.expected[(0, j)] = psum_groups(
            [int(v) for n in range(N) for v in np.transpose(acc[n, :, j, :]).reshape(-1)],
            M, config.psum_group)
    return prog


def encode_program(config, prog):
    """Raw bits of every stream word of ``prog``: ``{"cfg", "cmd", "filt", "ifmap", "psum"}``."""
    from ..hw.multicast import TaggedLayout
    from ..hw.pe import FilterGroup, PECommand, PEOp, PsumGroup
    from ..hw.pe_array import ArrayConfigWrite, ArrayTarget
    cfg_layout = ArrayConfigWrite(config)
    cmd_layout = PECommand(config)
    data_layout = TaggedLayout(config.noc_id_width, config.data_width)
    filt_layout = TaggedLayout(config.noc_id_width, FilterGroup(config))
    psum_layout = TaggedLayout(config.noc_id_width, PsumGroup(config))

    def tagged(layout, items):
        mask = (1 << layout["data"].width) - 1
        return [(r << layout["row"].offset) | (c << layout["col"].offset)
                | ((v & mask) << layout["data"].offset) for r, c, v in items]

    return {
        "cfg": [cfg_layout.const(dict(w, target=ArrayTarget[w["target"]])).as_bits()
                for w in prog.cfg],
        "cmd": [cmd_layout.const(dict(c, op=PEOp[c["op"]])).as_bits() for c in prog.cmds],
        "filt": tagged(filt_layout, prog.filt),
        "ifmap": tagged(data_layout, prog.ifmap),
        "psum": tagged(psum_layout, [(r, c, pack_psum_group(v, config.acc_width))
                                     for r, c, v in prog.psum]),
    }


def random_layer(rng, config, *, N=1, C=2, M=2, R=3, S=3, E=4, F=3, stride=1, zeros=0.3):
    """Random ifmap (N, C, H, W) and weights (M, C, R, S) giving an E x F output."""
    H = (E - 1) * stride + R
    W = (F - 1) * stride + S
    lo, hi = -(1 << (config.data_width - 1)), 1 << (config.data_width - 1)
    ifmap = rng.integers(lo, hi, size=(N, C, H, W))
    ifmap[rng.random(ifmap.shape) < zeros] = 0
    weights = rng.integers(lo, hi, size=(M, C, R, S))
    return ifmap, weights


#: Layers every simulator runs on the ``tiny`` array (one pass each); odd entries use a bias.
ARRAY_TEST_CASES = [
    dict(C=2, M=2, R=3, S=3, E=4, F=3),
    dict(C=1, M=3, R=2, S=2, E=3, F=4, stride=2),
    dict(C=3, M=1, R=1, S=1, E=4, F=5),               # 1x1 convolution, R = 1
    dict(C=1, M=2, R=3, S=4, E=2, F=2, N=2),          # batch of 2, R = rows
    dict(C=2, M=2, R=3, S=3, E=4, F=2, zeros=0.0),    # dense
    dict(C=2, M=4, R=2, S=3, E=2, F=3, stride=3, zeros=0.9),  # stride 3 > S - 1: unused ifmap rows
]


def array_case_program(config, index):
    """Program of ``ARRAY_TEST_CASES[index]`` with data drawn from seed ``index``."""
    shape = ARRAY_TEST_CASES[index]
    rng = np.random.default_rng(index)
    ifmap, weights = random_layer(rng, config, **shape)
    bias = rng.integers(-2**20, 2**20, size=weights.shape[0]) if index % 2 else None
    return single_pass_program(config, ifmap, weights, bias, stride=shape.get("stride", 1))
