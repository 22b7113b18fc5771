"""Cycle-exact timing of one RUN pass: a transaction-level model of the core during a PASS.

:func:`run_pass_cycles` steps, cycle by cycle, what decides the length of a RUN pass in the
RTL and nothing else: the core's PASS decoding (header, descriptor gathering and pushes), the
ifmap and psum buffer readers (loop nest, global-buffer bank arbitration, 4-entry FIFO), the
multicast networks (a value waits until every destination took it), each PE's ifmap ring
acceptance rule, its ``psum_in`` FIFO (filled ahead, emptied by the last slots of a window,
one transfer of ``psum_group`` psums per group of filters), MAC issue order and 4-stage
pipeline with its output FIFO (pushed once per group), the
vertical psum links, the round-robin output network with its register stage, and the output
writer. Values are not computed (timing does not depend on them without zero skipping).

It reads the same program the compiler emits (:func:`~rsaccel.gen.compiler.run_pass_program`
and :func:`~rsaccel.gen.compiler.array_config_writes`), so model and stream cannot drift
apart. The input stream is taken as never stalling, as everywhere in the cycle model.

The one state that crosses passes is the output network's round-robin pointer: it is an
argument and a result, so a layer's passes can be chained exactly (from reset, where it is 0,
as the runtime runs a layer).

Pure Python; about a microsecond per active PE and cycle. :mod:`rsaccel.sim.perf_model`
caches results per distinct pass.
"""

from collections import deque

from ..gen.compiler import array_config_writes
from ..hw.core import NEST_WORDS, OUTPUT_WORDS
from ..hw.pe import PEOp, ProcessingElement
from ..hw.pe_array import ArrayTarget, PsumSource
from .nest_model import nest_points

__all__ = ["run_pass_cycles"]

# Facts of the RTL the model relies on (checked against the RTL by the tests that compare
# this model's cycles with the simulated core's):
# A reader requests only while its FIFO (reader_fifo_depth entries) has room for the data.
# The global buffer holds back a read of the word a write is granted in the same cycle; the
# model does not: in the tested layers' RUN passes no read meets a write of its word.
# During a RUN pass only the ifmap reader (global-buffer read client 1) and the psum reader
# (client 2) read, and only the output writer writes, so the ifmap reader wins a bank both
# ask for and the writer never waits (hw/core.py, hw/glb.py).


class _Reader:
    """A BufferReader: one nest point a cycle when granted, data in its FIFO a cycle later.
    ``element_lanes=None``: a reader no other reads compete with (the filter reader during a
    RUN pass reads only the filter banks), whose requests are all granted."""

    def __init__(self, config, points, element_lanes):
        offset_bits = (config.glb_bank_depth - 1).bit_length()
        if element_lanes is None:
            self.banks = [-1] * len(points)
        else:
            per_word = config.lanes // element_lanes
            self.banks = [(addr // per_word) >> offset_bits for addr, _, _ in points]
        self.tags = [(row, col) for _, row, col in points]
        self.n = len(points)
        self.idx = 0
        self.active = False
        self.pending = None         # tag of the read granted last cycle
        self.fifo = deque()
        self.fifo_depth = config.reader_fifo_depth

    def request(self):
        """Bank requested this cycle, or None."""
        if self.active and len(self.fifo) + (self.pending is not None) < self.fifo_depth:
            return self.banks[self.idx]
        return None

    def busy(self):
        return self.active or self.pending is not None or bool(self.fifo)


def _offer(reader, dests, delivered, ready):
    """A multicast network this cycle: ``(head, taken, accept)`` for the value at the head of
    ``reader``'s FIFO (None if empty), the destinations that take it now (``ready(d)``,
    those not yet ``delivered``), and whether that completes it."""
    head = reader.fifo[0] if reader.fifo else None
    if head is None:
        return None, set(), False
    waiting = [d for d in dests[head] if d not in delivered]
    taken = {d for d in waiting if ready(d)}
    return head, taken, len(taken) == len(waiting)


def _array_setup(config, layer, t, ee, r, h):
    rows, cols = config.rows, config.cols
    enable = [[False] * cols for _ in range(rows)]
    src = [[PsumSource.ZERO] * cols for _ in range(rows)]
    row_id = {net: [0] * rows for net in ("filt", "ifmap", "psum")}
    col_id = {net: [[0] * cols for _ in range(rows)] for net in ("filt", "ifmap", "psum")}
    targets = {ArrayTarget.IFMAP_ROW_ID: ("ifmap", True), ArrayTarget.IFMAP_COL_ID: ("ifmap", False),
               ArrayTarget.PSUM_ROW_ID: ("psum", True), ArrayTarget.PSUM_COL_ID: ("psum", False),
               ArrayTarget.FILT_ROW_ID: ("filt", True), ArrayTarget.FILT_COL_ID: ("filt", False)}
    for target, row, col, value in array_config_writes(config, layer, t, ee, r, h):
        if target == ArrayTarget.PE_MODE:
            enable[row][col] = bool(value & 1)
            src[row][col] = PsumSource(value >> 1)
        elif target in targets:
            net, is_row = targets[target]
            if is_row:
                row_id[net][row] = value
            else:
                col_id[net][row][col] = value
    return enable, src, row_id, col_id


def run_pass_cycles(config, layer, program, t, ee, gather_last=0, r=1, h=1, events=None):
    """Cycles from accepting a RUN pass's PASS header to accepting the next command's header.

    ``program`` is the :class:`~rsaccel.gen.compiler.PassProgram` of the pass, ``t``, ``ee``,
    ``r`` and ``h`` the array configuration it runs under, ``gather_last`` the output network's
    round-robin pointer when the pass starts. Returns ``(cycles, gather_last)`` with the
    pointer when it ends. ``events``, a dict, gets ``filt_idle``: for a pass that loads its
    filters too (LOAD_RUN), the first cycle the filter reader is idle again (from then on a
    WRITE may fill the filter banks), else None. Zero skipping is not modelled (its issue order depends on the data).
    """
    if config.zero_skipping:
        raise ValueError("run_pass_cycles does not model zero skipping")
    op = program.pe_cmd.get("op")
    fused = op == PEOp.LOAD_RUN
    if (op not in (PEOp.RUN, PEOp.LOAD_RUN) or (program.filt is not None) != fused
            or None in (program.ifmap, program.psum, program.output)):
        raise ValueError("run_pass_cycles models RUN passes with ifmap and psum nests and an "
                         "output descriptor, and LOAD_RUN passes with a filter nest too")
    c = config
    rows, cols = c.rows, c.cols
    idw = c.noc_id_width
    cmd = program.pe_cmd
    S, P, Q, U, F = cmd["s"], cmd["p"], cmd["q"], cmd["stride"], cmd["width"]
    nrows, window = cmd["rows"], cmd["window"]
    psum_in_en = cmd.get("psum_in_en", 1)
    row_len = (F - 1) * U + S
    lookahead = c.ifmap_lookahead   # the ring takes the next row during a row's last window
    enable, src, row_id, col_id = _array_setup(c, layer, t, ee, r, h)

    readers = {"ifmap": _Reader(c, nest_points(program.ifmap, idw), 1),
               "psum": _Reader(c, nest_points(program.psum, idw), c.psum_lanes * c.psum_group),
               "filt": _Reader(c, nest_points(program.filt, idw) if fused else [], None)}
    fg, pqs = c.filter_group, P * Q * S
    g = c.psum_group
    fifo_depth = ProcessingElement.psum_fifo_depth(c)   # psum input and output FIFOs
    dests = {}
    for net in ("ifmap", "psum", "filt"):
        table = {}
        for tag in set(readers[net].tags):
            table[tag] = [row * cols + cc for row in range(rows) for cc in range(cols)
                          if enable[row][cc] and row_id[net][row] == tag[0]
                          and col_id[net][row][cc] == tag[1]]
            if not table[tag]:
                # the RTL drops the value and stops with NO_DESTINATION
                raise ValueError(f"A {net} value tagged {tag} has no destination PE (the "
                                 f"core would stop with NO_DESTINATION)")
        dests[net] = table

    npe = rows * cols
    pes = [i for i in range(npe) if enable[i // cols][i % cols]]
    # psum_in source per PE and whether its psum_out goes up (else to the output network)
    from_gin = [False] * npe
    below = [None] * npe
    goes_up = [False] * npe
    for i in pes:
        r, cc = divmod(i, cols)
        if src[r][cc] == PsumSource.GIN:
            from_gin[i] = True
        elif src[r][cc] == PsumSource.BELOW:
            below[i] = i + cols if r + 1 < rows else None
    for i in range(npe):
        r, cc = divmod(i, cols)
        goes_up[i] = r > 0 and src[r - 1][cc] == PsumSource.BELOW
    gon_sources = [i for i in range(npe) if not goes_up[i]]

    # PE state (index by PE number); a PE is running from the cycle after its command
    running = [False] * npe
    wpos = [0] * npe
    wchan = [0] * npe
    wmod = [0] * npe
    ahead = [False] * npe      # the ring is taking the next row (the current one is complete)
    out_f = [0] * npe
    cur_s = [0] * npe
    cur_c = [0] * npe
    cur_k = [0] * npe
    rows_left = [0] * npe
    a_valid = [False] * npe
    a_last = [False] * npe
    a_k = [0] * npe
    m_valid = [False] * npe    # the operand-register stage
    m_last = [False] * npe
    m_k = [0] * npe
    b_valid = [False] * npe
    b_last = [False] * npe
    b_k = [0] * npe
    level = [0] * npe          # output FIFO level
    in_level = [0] * npe       # psum_in FIFO level
    in_left = [0] * npe        # psum_in transfers the command still expects
    loading = [False] * npe    # LOAD_RUN: filters still loading (no MAC issues)
    fload = [0] * npe          # filter values written
    fhold = [0] * npe          # values of the held filter transfer still to write
    delivered = {"ifmap": set(), "psum": set(), "filt": set()}

    gather_valid = False
    last = gather_last
    w_active = False
    w_remaining = 0
    s1_valid = False
    count = program.output["count"]

    # the core's PASS decoding (cycle 0 takes the header): PE command pushed in cycle 3,
    # (filter nest in 5 + NW,) ifmap nest in 5 + NW, psum nest in 7 + 2 NW, output
    # descriptor in 9 + 2 NW + OW, then PASS_NEXT and PASS_WAIT from 11 + 2 NW + OW on; a
    # filter nest shifts everything after it by 2 + NW
    nw, ow = NEST_WORDS, OUTPUT_WORDS
    fw = 2 + nw if fused else 0
    push_pe, push_filt, push_ifmap, push_psum = 3, 5 + nw, 5 + nw + fw, 7 + 2 * nw + fw
    push_out = 9 + 2 * nw + ow + fw
    wait_from = 11 + 2 * nw + ow + fw

    cycle = 0
    filt_idle = None
    array_seen = False
    limit = 50 * (len(readers["ifmap"].tags) + len(readers["psum"].tags) * (S * Q * g + 4)
                  + count + len(readers["filt"].tags) * fg) + 1000
    while True:
        # --- combinational: PE issue conditions --------------------------------------------
        psum_ready = {}
        operand = {}
        stalled = set()
        for i in pes:
            # a window's sums leave in groups of g filters: the group's (or the window's)
            # last filter pushes into the output FIFO
            push = b_last[i] and (b_k[i] % g == g - 1 or b_k[i] == P - 1)
            stall = b_valid[i] and push and level[i] == fifo_depth
            if stall:
                stalled.add(i)
            if not running[i] or loading[i]:
                continue
            ok = (not stall) and (ahead[i] or out_f[i] * U + cur_s[i] < wpos[i])
            operand[i] = ok
            if (ok and psum_in_en and cur_s[i] == S - 1 and cur_c[i] == Q - 1
                    and cur_k[i] % g == 0):
                psum_ready[i] = True        # the window's last slots add psum_in, a group each
        # psum network head
        pr = readers["psum"]
        psum_head = pr.fifo[0] if pr.fifo else None
        psum_valid = set()
        if psum_head is not None:
            psum_valid = {d for d in dests["psum"][psum_head] if d not in delivered["psum"]}
        # issue: a group-start last slot takes a transfer from the PE's psum_in FIFO
        issue = {}
        for i, ok in operand.items():
            issue[i] = ok and (i not in psum_ready or in_level[i] > 0)
        # psum_in: a PE takes transfers while its command expects more and its FIFO has room
        in_ready = {i for i in pes if running[i] and in_left[i] > 0
                    and in_level[i] < fifo_depth}
        below_pop = set()
        in_push = set()
        for i in in_ready:
            if from_gin[i]:
                continue
            b = below[i]
            if b is None or level[b] > 0:   # the PE below's output FIFO (or zeros)
                in_push.add(i)
                if b is not None:
                    below_pop.add(b)
        # psum network: destinations that take the value now
        psum_taken = {d for d in psum_valid if d in in_ready}
        in_push |= psum_taken
        psum_accept = psum_head is not None and psum_valid <= psum_taken
        # ifmap network
        def ifmap_ready(d):
            if not (running[d] and wpos[d] < row_len):
                return False
            if wmod[d] >= S:
                return True                 # a position no window uses: dropped
            if not ahead[d]:
                keep = out_f[d] * U + min(cur_s[d], U) + window
            elif out_f[d] == F - 1:
                # the next row's positions enter the slots the row's last window has
                # finished with
                keep = window - S + cur_s[d]
            else:
                keep = 0
            return wpos[d] < keep
        ir = readers["ifmap"]
        ifmap_head, ifmap_taken, ifmap_accept = _offer(ir, dests["ifmap"], delivered["ifmap"],
                                                       ifmap_ready)

        # filter network (LOAD_RUN): a PE takes a transfer when its held one is empty or
        # writes its last value now, unless that value is the command's last
        def filt_ready(d):
            if fg == 1:
                return loading[d]
            return loading[d] and (fhold[d] == 0 or (fhold[d] == 1 and fload[d] != pqs - 1))
        fr = readers["filt"]
        filt_head, filt_taken, filt_accept = _offer(fr, dests["filt"], delivered["filt"],
                                                    filt_ready)
        # output writer and output network
        w_ready = w_active and w_remaining != 0
        take = gather_valid and w_ready
        can_take = (not gather_valid) or w_ready
        grant = None
        if can_take:
            valid_src = [i for i in gon_sources if level[i] > 0]
            if valid_src:
                after = [i for i in valid_src if i > last]
                grant = after[0] if after else valid_src[0]
        # buffer readers: the ifmap reader wins a bank both ask for
        ib, pb = ir.request(), pr.request()
        i_grant = ib is not None
        p_grant = pb is not None and not (i_grant and ib == pb)
        f_grant = fr.request() is not None    # the filter banks: no other reader
        # --- busy, as the core sees it this cycle (before the updates) -----------------------
        # (the array's busy is registered: the core sees last cycle's)
        array_busy = any(running[i] or a_valid[i] or m_valid[i] or b_valid[i] or level[i]
                         for i in pes)
        array_busy |= gather_valid
        sub_busy = ir.busy() or pr.busy() or fr.busy() or w_active or array_seen
        array_seen = array_busy
        if fused and filt_idle is None and cycle > push_filt and not fr.busy():
            filt_idle = cycle
        if cycle >= wait_from and not sub_busy:
            if events is not None:
                events["filt_idle"] = filt_idle
            return cycle + 1, last
        if cycle > limit:
            raise RuntimeError("run_pass_cycles: the pass did not finish (model deadlock)")

        # --- sequential updates ------------------------------------------------------------
        for net, head, taken, accept, reader in (
                ("ifmap", ifmap_head, ifmap_taken, ifmap_accept, ir),
                ("psum", psum_head, psum_taken, psum_accept, pr),
                ("filt", filt_head, filt_taken, filt_accept, fr)):
            if head is None:
                continue
            if accept:
                delivered[net] = set()
                reader.fifo.popleft()
            else:
                delivered[net] |= taken
        for reader, granted in ((ir, i_grant), (pr, p_grant), (fr, f_grant)):
            if reader.pending is not None:
                reader.fifo.append(reader.pending)
                reader.pending = None
            if granted:
                reader.pending = reader.tags[reader.idx]
                reader.idx += 1
                if reader.idx == reader.n:
                    reader.active = False
        # filter loaders
        for d in pes:
            if not loading[d]:
                continue
            if fg == 1:
                if d in filt_taken:
                    fload[d] += 1
                    loading[d] = fload[d] != pqs
                continue
            writing = fhold[d] != 0
            final = fload[d] == pqs - 1
            if writing:
                fload[d] += 1
                fhold[d] -= 1
            if d in filt_taken:
                fhold[d] = fg
            if writing and final:
                fhold[d] = 0
                loading[d] = False
        # ifmap values taken by PEs
        for d in ifmap_taken:
            if wchan[d] == Q - 1:
                wchan[d] = 0
                wpos[d] += 1
                wmod[d] = 0 if wmod[d] == U - 1 else wmod[d] + 1
                if lookahead and wpos[d] == row_len and not ahead[d] and rows_left[d] > 1:
                    wpos[d] = wmod[d] = 0       # row complete: go on with the next one
                    ahead[d] = True
            else:
                wchan[d] += 1
        # output network and writer
        w_active_next = w_active and not (w_remaining == 0 and not s1_valid)
        if take:
            w_remaining -= 1
        s1_valid = take
        if w_ready:
            gather_valid = False
        if grant is not None:
            gather_valid = True
            last = grant
            level[grant] -= 1
        for b in below_pop:
            level[b] -= 1
        for i in in_push:
            in_level[i] += 1
            in_left[i] -= 1
        for i in psum_ready:
            if issue[i]:
                in_level[i] -= 1
        # PE pipelines and issue sequencing
        for i in pes:
            if not running[i] and not (a_valid[i] or m_valid[i] or b_valid[i]):
                continue
            if i not in stalled:
                if b_valid[i] and b_last[i] and (b_k[i] % g == g - 1 or b_k[i] == P - 1):
                    level[i] += 1
                b_valid[i], b_last[i], b_k[i] = m_valid[i], m_last[i], m_k[i]
                m_valid[i], m_last[i], m_k[i] = a_valid[i], a_last[i], a_k[i]
                iss = issue.get(i, False)
                a_valid[i] = iss
                a_k[i] = cur_k[i]
                a_last[i] = iss and cur_s[i] == S - 1 and cur_c[i] == Q - 1
            if issue.get(i, False):
                if cur_k[i] != P - 1:
                    cur_k[i] += 1
                else:
                    cur_k[i] = 0
                    if cur_c[i] != Q - 1:
                        cur_c[i] += 1
                    else:
                        cur_c[i] = 0
                        if cur_s[i] != S - 1:
                            cur_s[i] += 1
                        else:
                            cur_s[i] = 0
                            if out_f[i] != F - 1:
                                out_f[i] += 1
                            else:
                                out_f[i] = 0
                                if rows_left[i] == 1 or not lookahead:
                                    wpos[i] = wchan[i] = wmod[i] = 0
                                    ahead[i] = False
                                elif wpos[i] == row_len and rows_left[i] > 2:
                                    wpos[i] = wmod[i] = 0   # the next row is complete too
                                else:
                                    ahead[i] = False
                                rows_left[i] -= 1
                                if rows_left[i] == 0:
                                    running[i] = False
        w_active = w_active_next
        # descriptor pushes from the core (each taken at once: everything is idle)
        if cycle == push_pe:
            for i in pes:
                running[i] = True
                rows_left[i] = nrows
                in_left[i] = nrows * F * -(-P // g) if psum_in_en else 0
                wpos[i] = wchan[i] = wmod[i] = out_f[i] = cur_s[i] = cur_c[i] = cur_k[i] = 0
                ahead[i] = False
                loading[i], fload[i], fhold[i] = fused, 0, 0
        elif fused and cycle == push_filt:
            fr.active = fr.n > 0
        elif cycle == push_ifmap:
            ir.active = ir.n > 0
        elif cycle == push_psum:
            pr.active = pr.n > 0
        elif cycle == push_out:
            w_active = count != 0
            w_remaining = count
        cycle += 1
