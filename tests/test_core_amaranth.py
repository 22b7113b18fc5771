"""The accelerator core under Amaranth's simulator: whole layers from the compiler, bit-exact."""

from dataclasses import replace

import numpy as np
import pytest

from rsaccel import preset
from rsaccel.gen.compiler import (Layer, LayerError, Mapping, block_layout, compile_layer,
                                  fuses_load, ifmap_chunk_words, ifmap_regions, iter_blocks,
                                  iter_chunks, iter_passes, plan_mapping, unpack_outputs)
from rsaccel.gen.mapper import check_mapping, choose_mapping
from rsaccel.hw.core import CoreError, Opcode, PassFlag
from rsaccel.sim.amaranth_tb import run_core
from rsaccel.sim.golden import conv2d
from rsaccel.sim.layer_cases import (CHANNEL_SET_CASES, SIDE_BY_SIDE_CASES, TEST_LAYERS,
                                     layer_tensors)
from rsaccel.sim.perf_model import COUNT_NAMES, model_layer

TINY = preset("tiny")


def reference(config, layer, x, w, b):
    return conv2d(x, w, b, stride=layer.stride, pad=layer.pad, groups=layer.groups,
                  relu=layer.relu, out_shift=layer.out_shift, data_width=config.data_width,
                  acc_width=config.acc_width)


def mapping_for(rule, layer, x, config=TINY):
    if rule == "simple":
        return plan_mapping(config, layer)
    return choose_mapping(config, layer, objective=rule, ifmap=x)[0]


#: The test layers, and the multipass layer at batch 1 (half the simulated cycles) for the tests
#: that run it on many hardware variants.
CORE_LAYERS = {**TEST_LAYERS,
               "multipass_n1": (replace(TEST_LAYERS["relu_shift_pad_multipass"][0], N=1),
                                TEST_LAYERS["relu_shift_pad_multipass"][1])}


def run_test_layer(name, rule, config=TINY, **run):
    """Compile test layer ``name`` (of :data:`CORE_LAYERS`) for ``config`` under mapping ``rule``
    (skipping a mapper rule that picks the simple one) and run it through the core; returns
    what the checks need."""
    layer, zeros = CORE_LAYERS[name]
    x, w, b = layer_tensors(config, layer, seed=len(name), zeros=zeros)
    mapping = mapping_for(rule, layer, x, config)
    if rule != "simple" and mapping == plan_mapping(config, layer):
        pytest.skip("the mapper picks the simple rule's mapping (run under 'simple')")
    compiled = compile_layer(config, layer, x, w, b, mapping)
    expect = sum(r["words"] for r in compiled.reads) + 1
    words, state = run_core(config, compiled.words, expect, **run)
    assert state["error"] == CoreError.NONE
    return layer, (x, w, b), mapping, compiled, expect, words, state


@pytest.mark.parametrize("rule", ["simple", "energy", "cycles"])
@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_layer(name, rule):
    layer, (x, w, b), mapping, compiled, expect, words, state = run_test_layer(
        name, rule, stall=0.3, seed=len(name))
    ofmap = unpack_outputs(TINY, compiled, words)
    ref = reference(TINY, layer, x, w, b)
    bad = np.argwhere(ofmap != ref)
    assert bad.size == 0, (f"{name}: first mismatch at (n, m, e, f)={tuple(bad[0])}: "
                           f"got {ofmap[tuple(bad[0])]}, expected {ref[tuple(bad[0])]}")
    c = state["counters"]
    # every MAC slot of the mapping is either done or gated
    assert compiled.mac_slots >= layer.macs
    assert c["macs"] + c["gated_macs"] == compiled.mac_slots
    assert c["words_in"] == len(compiled.words)
    assert c["words_out"] == expect
    # the analytical model predicts every access counter exactly (stalls change none)
    model = model_layer(TINY, layer, mapping, ifmap=x)
    wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
    assert not wrong, f"{name} {mapping}: model vs RTL {wrong}"


@pytest.mark.parametrize("rule", ["simple", "energy"])
@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_model_cycles_equal_rtl(name, rule):
    # with a stream that never stalls the model's cycles are the RTL's, to the cycle (the
    # exact model steps every distinct RUN pass; the rest is costed from the stream words)
    layer, (x, _, _), mapping, _, _, _, state = run_test_layer(name, rule, stall=0.0,
                                                              max_cycles=400000)
    model = model_layer(TINY, layer, mapping, ifmap=x)
    assert model.cycle_model == "exact"
    assert model.cycles == state["counters"]["cycles"], (
        f"{name} {mapping}: model {model.cycles} cycles, RTL {state['counters']['cycles']}")


@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups", "fc"])
def test_detached_passes_overlap_writes_and_are_modelled(name):
    # the same layer compiled without detached passes, with them, and with them and a second
    # ifmap region: all bit-exact, all timed to the cycle by the model; the detached stream
    # hides the writes that ran beside passes, the second region more of them
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=len(name), zeros=zeros)
    mapping = plan_mapping(TINY, layer)
    cycles, streams, models = {}, {}, {}
    for overlap, double in ((False, False), (True, False), (True, True)):
        compiled = compile_layer(TINY, layer, x, w, b, mapping, overlap=overlap,
                                 double_ifmap=double, detach_reads=False)
        streams[overlap, double] = compiled.words
        model = model_layer(TINY, layer, mapping, ifmap=x, overlap=overlap, double_ifmap=double,
                            detach_reads=False)
        models[overlap, double] = model
        if double and compiled.words == streams[True, False]:
            # one chunk a block, or no room for a second region: the same stream
            assert model.cycles == cycles[True, False]
            continue
        expect = sum(r["words"] for r in compiled.reads) + 1
        words, state = run_core(TINY, compiled.words, expect, stall=0.0, max_cycles=400000)
        assert state["error"] == CoreError.NONE
        assert np.array_equal(unpack_outputs(TINY, compiled, words),
                              reference(TINY, layer, x, w, b))
        assert model.cycles == state["counters"]["cycles"], (overlap, model.cycles, state)
        assert (model.cycle_parts["overlap"] < 0) == overlap
        cycles[overlap, double] = state["counters"]["cycles"]
    assert (cycles[True, False] - cycles[False, False]
            == models[True, False].cycle_parts["overlap"])
    if name == "relu_shift_pad_multipass":
        # two chunks a block, and its blocks have room for a second region
        assert streams[True, True] != streams[True, False]
        assert cycles[True, True] < cycles[True, False] - compiled.passes // 2, cycles
    streams = {overlap: streams[overlap, False] for overlap in (False, True)}
    # the streams differ only in the DETACH bit of every PASS header (a LOAD and a RUN a chunk;
    # the READs stay attached here, see test_detached_reads_overlap_the_next_block)
    diff = [(a, b_) for a, b_ in zip(streams[False], streams[True]) if a != b_]
    assert len(streams[False]) == len(streams[True])
    assert len(diff) == 2 * compiled.passes
    assert all(b_ == a | PassFlag.DETACH and a >> 56 == Opcode.PASS.value for a, b_ in diff)


def _read_headers(config, compiled):
    """Indices of the READ headers of a compiled stream (walked command by command)."""
    from rsaccel.hw.core import NEST_WORDS, OUTPUT_WORDS
    sizes = {PassFlag.PE_CMD: 1, PassFlag.FILT: NEST_WORDS, PassFlag.IFMAP: NEST_WORDS,
             PassFlag.PSUM: NEST_WORDS, PassFlag.OUTPUT: OUTPUT_WORDS}
    words, i, reads = compiled.words, 0, []
    while i < len(words):
        op, head = Opcode(words[i] >> 56), words[i]
        i += 1
        if op == Opcode.CONFIG:
            i += head & 0xFFFFFFFF
        elif op == Opcode.WRITE:
            i += (head >> 24) & 0xFFFFFF
        elif op == Opcode.PASS:
            i += sum(n for flag, n in sizes.items() if head & flag)
        elif op == Opcode.READ:
            reads.append(i - 1)
        else:
            assert op == Opcode.SYNC and i == len(words)
    return reads


@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "pointwise_stacked_sets",
                                  "all_zero"])
def test_detached_reads_overlap_the_next_block(name):
    # a block's output READ, detached, goes beside the next block's CONFIG, bias and filter
    # WRITEs and its first LOAD pass (with the ifmap WRITE beside that); the RUN pass after
    # them waits for the READ. The same stream with every READ attached: both bit-exact (with
    # random stalls on both streams too), both timed to the cycle by the model, and the
    # detached one faster by exactly what the model says the READs hide
    from rsaccel.hw.core import READ_DETACH_BIT
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=len(name), zeros=zeros)
    mapping = plan_mapping(TINY, layer)
    ref = reference(TINY, layer, x, w, b)
    cycles, models, streams = {}, {}, {}
    for detach in (False, True):
        compiled = compile_layer(TINY, layer, x, w, b, mapping, detach_reads=detach)
        streams[detach] = compiled.words
        expect = sum(r["words"] for r in compiled.reads) + 1
        for stall in (0.0, 0.4) if detach else (0.0,):
            words, state = run_core(TINY, compiled.words, expect, stall=stall, seed=5,
                                    max_cycles=400000)
            assert state["error"] == CoreError.NONE
            assert np.array_equal(unpack_outputs(TINY, compiled, words), ref), (detach, stall)
            if stall == 0.0:
                cycles[detach] = state["counters"]["cycles"]
        models[detach] = model_layer(TINY, layer, mapping, ifmap=x, detach_reads=detach)
        assert models[detach].cycles == cycles[detach], (detach, models[detach].cycles, cycles)
    hidden = models[False].cycle_parts["overlap"] - models[True].cycle_parts["overlap"]
    assert hidden > 0 and cycles[False] - cycles[True] == hidden, (hidden, cycles)
    # the streams differ in the detach bit of some READ headers (never the last: SYNC follows)
    reads = _read_headers(TINY, compiled)
    assert len(reads) == len(compiled.reads) >= 2
    diff = [i for i, (a, b_) in enumerate(zip(streams[False], streams[True])) if a != b_]
    assert len(streams[False]) == len(streams[True])
    assert diff and set(diff) <= set(reads[:-1])
    assert all(streams[True][i] == streams[False][i] | 1 << READ_DETACH_BIT for i in diff)


@pytest.mark.parametrize("channels", [2, 3])
def test_read_stays_attached_when_the_next_rows_land_on_the_outputs(channels):
    # TIGHT's blocks put their second ifmap region over their outputs. With two chunks a
    # block (C = 2) the first chunk's rows go there, and must not be written while the
    # outputs of the block before are still going out: those READs stay attached. With three
    # (C = 3) the first chunk uses the other region and every READ but the last is detached
    from rsaccel.gen.compiler import iter_passes, read_beside_next
    from rsaccel.hw.core import READ_DETACH_BIT
    layer = Layer(N=1, C=channels, M=4, H=6, W=30, R=3, S=3, stride=1, pad=1, groups=1,
                  relu=True, out_shift=4)
    mapping = Mapping(e=3, t=1, p=2, q=1, n=1, active_pes=9, r=1)
    check_mapping(TIGHT, layer, mapping)
    firsts = [cp for cp in iter_passes(TIGHT, layer, mapping) if cp.ci == 0]
    decisions = []
    for prev, cp in zip(firsts, firsts[1:]):
        lay = block_layout(TIGHT, layer, prev.blk)
        rows = ifmap_chunk_words(TIGHT, layer, cp.blk.nn, cp.blk.r, cp.q, cp.blk.rows_in)
        over = (not cp.reused and cp.ifmap_word < lay.out_word + lay.out_words
                and cp.ifmap_word + rows > lay.out_word)
        decisions.append(read_beside_next(TIGHT, layer, prev.blk, cp))
        assert decisions[-1] == (not over)
    assert len(decisions) == 3 and set(decisions) == {channels == 3}, decisions
    x, w, b = layer_tensors(TIGHT, layer, seed=2, zeros=0.3)
    compiled = compile_layer(TIGHT, layer, x, w, b, mapping)
    reads = _read_headers(TIGHT, compiled)
    assert [bool(compiled.words[i] >> READ_DETACH_BIT & 1) for i in reads] == decisions + [False]
    expect = sum(r["words"] for r in compiled.reads) + 1
    for stall in (0.3, 0.0):
        words, state = run_core(TIGHT, compiled.words, expect, stall=stall, seed=1,
                                max_cycles=400000)
        assert state["error"] == CoreError.NONE
        assert np.array_equal(unpack_outputs(TIGHT, compiled, words),
                              reference(TIGHT, layer, x, w, b)), stall
    assert model_layer(TIGHT, layer, mapping, ifmap=x).cycles == state["counters"]["cycles"]


def test_detached_passes_overlap_rlc_writes():
    # with rlc_in the ifmap WRITE_RLC runs beside the LOAD pass too (one ifmap region) or
    # beside the previous RUN pass (two): fewer cycles, same result, and the model (whose RLC
    # command costs are fitted) within 1 % of the RTL every way
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    x, w, b = layer_tensors(TINY, layer, seed=7, zeros=zeros)
    mapping = plan_mapping(TINY, layer)
    cycles = {}
    for overlap, double in ((False, False), (True, False), (True, True)):
        compiled = compile_layer(TINY, layer, x, w, b, mapping, rlc_in=True, overlap=overlap,
                                 double_ifmap=double)
        expect = sum(r["words"] for r in compiled.reads) + 1
        words, state = run_core(TINY, compiled.words, expect, stall=0.0, max_cycles=400000)
        assert state["error"] == CoreError.NONE
        assert np.array_equal(unpack_outputs(TINY, compiled, words),
                              reference(TINY, layer, x, w, b))
        cycles[overlap, double] = state["counters"]["cycles"]
        model = model_layer(TINY, layer, mapping, ifmap=x, rlc_in=True, overlap=overlap,
                            double_ifmap=double)
        assert abs(model.cycles - cycles[overlap, double]) <= 0.01 * cycles[overlap, double], (
            overlap, double, model.cycles, cycles[overlap, double])
    hidden = cycles[False, False] - cycles[True, False]
    assert hidden > 2 * compiled.passes, cycles    # more than a cycle a pass
    assert cycles[True, True] < cycles[True, False], cycles


def test_second_ifmap_region_with_many_chunks():
    # five chunks a block (q = 1): chunks 2 and 4 write region 0 again beside the RUN pass of
    # the chunk before, which writes psums; bit-exact, and the model's cycles equal the RTL's
    # (so no write of the stream met one of the output writer in a bank)
    name = "relu_shift_pad_multipass"
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=len(name), zeros=zeros)
    mapping = replace(plan_mapping(TINY, layer), q=1)
    check_mapping(TINY, layer, mapping)
    assert len(list(iter_chunks(layer, mapping))) >= 3
    assert all(len(ifmap_regions(TINY, layer, blk, 1)) == 2
               for blk in iter_blocks(layer, mapping))
    compiled = compile_layer(TINY, layer, x, w, b, mapping)
    expect = sum(r["words"] for r in compiled.reads) + 1
    words, state = run_core(TINY, compiled.words, expect, stall=0.0, max_cycles=400000)
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(TINY, compiled, words), reference(TINY, layer, x, w, b))
    model = model_layer(TINY, layer, mapping, ifmap=x)
    assert model.cycles == state["counters"]["cycles"], (model.cycles, state["counters"])


@pytest.mark.parametrize("config", [TINY, TINY.replace(glb_filter_banks=2, filter_group=8),
                                    TINY.replace(filter_group=1)],
                         ids=["tiny", "filter8", "filter1"])
def test_fused_loads_bit_exact_and_modelled(config):
    # chunks after a block's first, whose rows went beside the previous RUN pass, load their
    # filters in their own RUN pass (LOAD_RUN): bit-exact under stalls, every counter as
    # modelled, and without stalls the cycles, fused or not; fusing saves the LOAD passes
    name = "relu_shift_pad_multipass"
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(config, layer, seed=len(name), zeros=zeros)
    mapping = replace(plan_mapping(config, layer), q=1)
    fused = sum(fuses_load(config, cp) for cp in iter_passes(config, layer, mapping))
    if config.filter_group == 1:
        # one value a transfer keeps its LOAD passes (the cycle model is not exact there)
        assert fused == 0
        return
    assert fused >= len(list(iter_blocks(layer, mapping))) * 2    # five chunks a block
    cycles, lengths = {}, {}
    for fuse in (False, True):
        compiled = compile_layer(config, layer, x, w, b, mapping, fuse_loads=fuse)
        lengths[fuse] = len(compiled.words)
        model = model_layer(config, layer, mapping, ifmap=x, fuse_loads=fuse)
        # stalls on the fused stream only (the unfused one is the other tests' usual case)
        for stall in (0.0, 0.3) if fuse else (0.0,):
            words, state = run_core(config, compiled.words,
                                    sum(r["words"] for r in compiled.reads) + 1, stall=stall,
                                    seed=7, max_cycles=400000)
            assert state["error"] == CoreError.NONE
            assert np.array_equal(unpack_outputs(config, compiled, words),
                                  reference(config, layer, x, w, b))
            c = state["counters"]
            wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
            assert not wrong, (fuse, wrong)
            if stall == 0.0:
                assert model.cycles == c["cycles"], (fuse, model.cycles, c["cycles"])
                cycles[fuse] = c["cycles"]
    assert cycles[True] < cycles[False], cycles
    # each fused chunk drops its LOAD PASS header and PE command (its filter nest moves)
    assert lengths[False] - lengths[True] == 2 * fused


#: Four banks of 64 words: a 30-wide layer under e=3, p=2, q=1 (three chunks a block) has no
#: room for two ifmap regions above its outputs, but for one over them.
TIGHT = TINY.replace(glb_banks=4, glb_bank_depth=64)


def _second_region_case():
    """A layer and mapping whose middle chunk's rows go to the second ifmap region."""
    layer = Layer(N=1, C=3, M=4, H=6, W=30, R=3, S=3, stride=1, pad=1, groups=1, relu=True,
                  out_shift=4)
    tensors = layer_tensors(TIGHT, layer, seed=11, zeros=0.3)
    mapping = Mapping(e=3, t=1, p=2, q=1, n=1, active_pes=9, r=1)
    check_mapping(TIGHT, layer, mapping)
    assert len(list(iter_chunks(layer, mapping))) == 3
    return layer, tensors, mapping


def test_second_ifmap_region_over_the_outputs_and_reused_rows():
    # the middle chunk's rows go where the last chunk's RUN pass writes the outputs (a bank
    # above the psums); the first and last chunks use the first region. Bit-exact (with
    # stream stalls too), the model's cycles and stream words equal the RTL's (so no bank is
    # shared by the stream's writes and the output writer's), and faster than with one
    # region: the ifmap WRITE is longer than the LOAD it ran beside. With and without the
    # reuse of the rows a block leaves in the buffer for the next
    layer, (x, w, b), mapping = _second_region_case()
    ppw = TIGHT.lanes // TIGHT.psum_lanes
    for blk in iter_blocks(layer, mapping):
        regions = ifmap_regions(TIGHT, layer, blk)
        lay = block_layout(TIGHT, layer, blk)
        assert len(regions) == 2 and regions[1] == lay.out_word
        assert lay.out_word % TIGHT.glb_bank_depth == 0
        assert -(-blk.t * lay.set_elems // ppw) <= lay.out_word     # psums below it
        words = ifmap_chunk_words(TIGHT, layer, blk.nn, blk.r, blk.q, blk.rows_in)
        assert regions[1] + words <= lay.bias_word < lay.ifmap_word == regions[0]
    cycles, words_in = {}, {}
    for double, reuse in ((False, False), (True, False), (True, True), (False, True)):
        compiled = compile_layer(TIGHT, layer, x, w, b, mapping, double_ifmap=double,
                                 reuse_rows=reuse)
        expect = sum(r["words"] for r in compiled.reads) + 1
        for stall in (0.0, 0.3) if double and reuse else (0.0,):
            words, state = run_core(TIGHT, compiled.words, expect, stall=stall, seed=3,
                                    max_cycles=400000)
            assert state["error"] == CoreError.NONE
            assert np.array_equal(unpack_outputs(TIGHT, compiled, words),
                                  reference(TIGHT, layer, x, w, b)), (double, reuse, stall)
            if stall == 0.0:
                cycles[double, reuse] = state["counters"]["cycles"]
                words_in[double, reuse] = state["counters"]["words_in"]
        model = model_layer(TIGHT, layer, mapping, ifmap=x, double_ifmap=double,
                            reuse_rows=reuse)
        assert model.cycles == cycles[double, reuse], (double, reuse, model.cycles, cycles)
        assert model.counts["words_in"] == words_in[double, reuse]
    assert cycles[True, False] < cycles[False, False] - len(compiled.reads), cycles
    # the second filter block of each strip takes its chunks in reverse, starting from the
    # rows the first left in the first region: one ifmap WRITE (header and rows) fewer
    blk = next(iter_blocks(layer, mapping))
    chunk_words = 1 + ifmap_chunk_words(TIGHT, layer, blk.nn, blk.r, blk.q, blk.rows_in)
    strips = -(-layer.E // mapping.e)
    for double in (False, True):
        assert words_in[double, False] - words_in[double, True] == strips * chunk_words
        assert cycles[double, True] < cycles[double, False], cycles


@pytest.mark.slow
def test_second_ifmap_region_reused_rows_rlc():
    # the case above with the rows run-length coded: one WRITE_RLC fewer a strip, words as
    # modelled
    layer, (x, w, b), mapping = _second_region_case()
    words_in = {}
    for reuse in (False, True):
        compiled = compile_layer(TIGHT, layer, x, w, b, mapping, rlc_in=True, reuse_rows=reuse)
        words, state = run_core(TIGHT, compiled.words, sum(r["words"] for r in compiled.reads) + 1,
                                stall=0.0, max_cycles=400000)
        assert state["error"] == CoreError.NONE
        assert np.array_equal(unpack_outputs(TIGHT, compiled, words),
                              reference(TIGHT, layer, x, w, b)), reuse
        model = model_layer(TIGHT, layer, mapping, ifmap=x, rlc_in=True, reuse_rows=reuse)
        assert model.counts["words_in"] == state["counters"]["words_in"], reuse
        assert abs(model.cycles - state["counters"]["cycles"]) <= 0.01 * model.cycles, reuse
        words_in["rlc", reuse] = state["counters"]["words_in"]
    assert words_in["rlc", True] < words_in["rlc", False]


def test_hung_detached_pass_times_out(monkeypatch):
    # a RUN pass whose PEs wait for an ifmap row that never comes: the decoder has gone back
    # to IDLE (the pass is detached) and holds the next LOAD, and the watchdog still fires
    from rsaccel.gen import compiler
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    x, w, b = layer_tensors(TINY, layer, seed=5, zeros=zeros)
    real = compiler.run_pass_program

    def one_row_too_many(*args, **kwargs):
        program = real(*args, **kwargs)
        return program._replace(pe_cmd=dict(program.pe_cmd, rows=program.pe_cmd["rows"] + 1))

    monkeypatch.setattr(compiler, "run_pass_program", one_row_too_many)
    compiled = compile_layer(TINY, layer, x, w, b)
    got, state = run_core(TINY, compiled.words, 1, stall=0.0, max_cycles=20000, timeout=300)
    assert state["error"] == CoreError.TIMEOUT
    assert got == []


#: Smaller global-buffer banks put a layer's ifmap rows and psums in different banks, so the
#: ifmap and psum readers no longer contend for one bank as they do on ``tiny``.
SMALL_BANKS = {"banks16": TINY.replace(glb_banks=16, glb_bank_depth=64),
               "banks32": TINY.replace(glb_banks=32, glb_bank_depth=32)}


@pytest.mark.parametrize("banks", sorted(SMALL_BANKS))
@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups", "all_zero",
                                  "stride3_unused_rows"])
def test_model_cycles_equal_rtl_small_banks(name, banks):
    config = SMALL_BANKS[banks]
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(config, layer, seed=len(name), zeros=zeros)
    mapping = plan_mapping(config, layer)
    compiled = compile_layer(config, layer, x, w, b, mapping)
    expect = sum(r["words"] for r in compiled.reads) + 1
    words, state = run_core(config, compiled.words, expect, stall=0.0, max_cycles=400000)
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(config, compiled, words),
                          reference(config, layer, x, w, b))
    model = model_layer(config, layer, mapping, ifmap=x)
    assert model.cycles == state["counters"]["cycles"], (model.cycles, state["counters"])


R_CASES = CHANNEL_SET_CASES
MAPPED_CASES = {**CHANNEL_SET_CASES, **SIDE_BY_SIDE_CASES}


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("name", sorted(MAPPED_CASES))
def test_channel_sets_and_sets_side_by_side(name, stall):
    # r channel sets and h sets side by side: bit-exact, every counter as modelled, and with
    # no stalls the cycles too
    config, layer, mapping = MAPPED_CASES[name]
    x, w, b = layer_tensors(config, layer, seed=len(name), zeros=0.3)
    compiled = compile_layer(config, layer, x, w, b, mapping)
    words, state = run_core(config, compiled.words, sum(r["words"] for r in compiled.reads) + 1,
                            stall=stall, seed=len(name), max_cycles=400000)
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(config, compiled, words),
                          reference(config, layer, x, w, b))
    c = state["counters"]
    assert c["macs"] + c["gated_macs"] == compiled.mac_slots >= layer.macs
    model = model_layer(config, layer, mapping, ifmap=x)
    wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
    assert not wrong, f"{name}: model vs RTL {wrong}"
    if stall == 0.0:
        assert model.cycles == c["cycles"], (model.cycles, c["cycles"])


def test_channel_sets_cut_psum_transfers():
    # the point of r: the same layer moves 1/r of the psums through the psum networks
    config, layer, mapping = R_CASES["pointwise_r3"]
    single = model_layer(config, layer, Mapping(e=4, t=1, p=5, q=1, n=1, active_pes=4))
    triple = model_layer(config, layer, mapping)
    assert triple.counts["noc_psum_transfers"] * 3 == single.counts["noc_psum_transfers"]
    assert triple.counts["macs"] + triple.counts["gated_macs"] == layer.macs


def test_gated_macs_equal_zero_operands():
    # no padded filters, no padding: the gated count is the number of MAC slots whose ifmap
    # operand is zero, computed here by brute force
    layer, _ = TEST_LAYERS["strips"]
    x, w, b = layer_tensors(TINY, layer, seed=3, zeros=0.5)
    compiled = compile_layer(TINY, layer, x, w, b)
    words, state = run_core(TINY, compiled.words,
                            sum(r["words"] for r in compiled.reads) + 1, stall=0.3, seed=3)
    zero_slots = 0
    for n in range(layer.N):
        for e in range(layer.E):
            for f in range(layer.F):
                for c in range(layer.C):
                    for r in range(layer.R):
                        for s in range(layer.S):
                            zero_slots += x[n, c, e + r, f + s] == 0
    assert state["counters"]["gated_macs"] == zero_slots * layer.M
    assert state["counters"]["macs"] + state["counters"]["gated_macs"] == layer.macs


def test_bad_opcode_reports_error_and_drains():
    words = [0x7F << 56] + [0x12345] * 20
    got, state = run_core(TINY, words, 1, stall=0.0, max_cycles=2000)
    assert state["error"] == CoreError.BAD_OPCODE
    assert got == []
    assert state["counters"]["words_in"] == len(words)   # the rest was discarded, no hang


NO_CODEC = TINY.replace(rlc_codec=False)


def test_without_codec_rlc_opcodes_are_refused_and_plain_layers_run():
    # a core built without the RLC codec refuses WRITE_RLC (0x06) and READ_RLC (0x07) ...
    for opcode in (0x06, 0x07):
        words = [(opcode << 56) | (4 << 24)] + [0] * 8
        got, state = run_core(NO_CODEC, words, 1, stall=0.0, max_cycles=2000)
        assert state["error"] == CoreError.BAD_OPCODE, opcode
        assert got == []
    # ... and still runs a plain layer bit-exactly, with the same counts as the full core
    layer, zeros = TEST_LAYERS["stride2_groups"]
    x, w, b = layer_tensors(NO_CODEC, layer, seed=3, zeros=zeros)
    compiled = compile_layer(NO_CODEC, layer, x, w, b)
    expect = sum(r["words"] for r in compiled.reads) + 1
    words, state = run_core(NO_CODEC, compiled.words, expect, stall=0.3, seed=3)
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(NO_CODEC, compiled, words),
                          reference(NO_CODEC, layer, x, w, b))
    model = model_layer(NO_CODEC, layer, compiled.mapping, ifmap=x)
    wrong = {k: (model.counts[k], state["counters"][k]) for k in COUNT_NAMES
             if model.counts[k] != state["counters"][k]}
    assert not wrong
    # the compiler refuses coded transfers for it before anything runs
    with pytest.raises(LayerError, match="rlc_codec = False"):
        compile_layer(NO_CODEC, layer, x, w, b, rlc_in=True)


def test_broken_mapping_is_detected():
    # send one PE column's ifmap rows with a wrong tag: values with no destination are an error
    layer, zeros = TEST_LAYERS["strips"]
    x, w, b = layer_tensors(TINY, layer, seed=4)
    compiled = compile_layer(TINY, layer, x, w, b)
    words = list(compiled.words)
    # corrupt the ifmap nest of the first RUN pass: its col tag start (bits 30..35 of word 1)
    run_header = next(i for i, wd in enumerate(words)
                      if wd >> 56 == 0x04 and (wd & 0x1F) == 0x1D)
    words[run_header + 2] ^= 0x3F << 30
    got, state = run_core(TINY, words, sum(r["words"] for r in compiled.reads) + 1,
                          stall=0.0, max_cycles=20000)
    assert state["error"] in (CoreError.NO_DESTINATION, CoreError.TIMEOUT)


@pytest.mark.parametrize("rlc_in,rlc_out", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups", "all_zero",
                                  "pointwise_stacked_sets"])
def test_layer_rlc(name, rlc_in, rlc_out):
    # the ifmap through the RLC decoder, the ofmap through the encoder: still bit-exact, and
    # the model (given the data) still predicts every counter, coded stream words included
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=len(name) + 1, zeros=zeros)
    ref = reference(TINY, layer, x, w, b)
    mapping = mapping_for("energy", layer, x)
    compiled = compile_layer(TINY, layer, x, w, b, mapping, rlc_in=rlc_in, rlc_out=rlc_out)
    plain = compile_layer(TINY, layer, x, w, b, mapping)
    model = model_layer(TINY, layer, mapping, ifmap=x, rlc_in=rlc_in, rlc_out=rlc_out,
                        ofmap=ref)
    words, state = run_core(TINY, compiled.words, model.counts["words_out"], stall=0.3,
                            seed=len(name))
    assert state["error"] == CoreError.NONE
    assert words[-1] >> 48 == 0x5C00, "the stream did not end with the SYNC marker"
    ofmap = unpack_outputs(TINY, compiled, words)
    assert np.array_equal(ofmap, ref)
    c = state["counters"]
    assert c["words_in"] == len(compiled.words)
    # the coded streams are never longer than their plain counterparts on sparse data
    if zeros >= 0.5:
        assert len(compiled.words) <= len(plain.words) or not rlc_in
    wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
    assert not wrong, f"{name} {mapping}: model vs RTL {wrong}"


@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups",
                                  "pointwise_stacked_sets"])
def test_model_cycles_rlc_within_one_percent(name):
    # coded commands cost a few cycles the model estimates (fitted on other data than this):
    # the layer's cycles stay within 1 % of the RTL's with no stalls
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=len(name) + 11, zeros=zeros)
    ref = reference(TINY, layer, x, w, b)
    mapping = mapping_for("energy", layer, x)
    compiled = compile_layer(TINY, layer, x, w, b, mapping, rlc_in=True, rlc_out=True)
    model = model_layer(TINY, layer, mapping, ifmap=x, rlc_in=True, rlc_out=True, ofmap=ref)
    words, state = run_core(TINY, compiled.words, model.counts["words_out"], stall=0.0)
    assert np.array_equal(unpack_outputs(TINY, compiled, words), ref)
    rtl = state["counters"]["cycles"]
    assert abs(model.cycles - rtl) <= 0.01 * rtl, (model.cycles, rtl)


SKIPPING = TINY.replace(zero_skipping=True)


@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_layer_zero_skipping(name):
    # PEs that pass over zero operands: still bit-exact, the model (given the data) still
    # predicts every counter, and sparse layers take fewer cycles than with gating only
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(SKIPPING, layer, seed=len(name), zeros=zeros)
    mapping = choose_mapping(SKIPPING, layer, ifmap=x)[0]
    compiled = compile_layer(SKIPPING, layer, x, w, b, mapping)
    expect = sum(r["words"] for r in compiled.reads) + 1
    words, state = run_core(SKIPPING, compiled.words, expect, stall=0.0, seed=len(name))
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(SKIPPING, compiled, words),
                          reference(SKIPPING, layer, x, w, b))
    c = state["counters"]
    assert c["macs"] + c["gated_macs"] == compiled.mac_slots
    model = model_layer(SKIPPING, layer, mapping, ifmap=x)
    wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
    assert not wrong, f"{name} {mapping}: model vs RTL {wrong}"
    gating_words, gating = run_core(TINY, compiled.words, expect, stall=0.0, seed=len(name))
    assert gating["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(TINY, compiled, gating_words),
                          unpack_outputs(SKIPPING, compiled, words))
    # deciding a window's last slot may cost a skipping PE a cycle per row, which on small
    # layers with few zeros can outweigh the zeros skipped (strips, 30 % zeros: 428 cycles
    # against 422); mostly-zero data is faster
    slowest = gating["counters"]["cycles"] * (1.0 if zeros >= 0.5 else 1.02)
    assert c["cycles"] <= slowest, (c["cycles"], gating["counters"]["cycles"])
    print(name, zeros, "cycles gating", gating["counters"]["cycles"], "skipping", c["cycles"],
          "model", model.cycles)


#: Psum transfers of one psum (the narrow network) and of four (8-bit data, 16-bit psums: a
#: word holds four); ``tiny`` itself moves two.
PSUM_GROUPS = {"group1": TINY.replace(psum_group=1),
               "group4": TINY.replace(data_width=8, acc_width=16, psum_group=4)}


def _psum_transfers_per_network(layer, mapping, group):
    """Psum transfers a mapping needs on each psum network, counted from its blocks: every
    channel chunk of a block sends ``t*ee*nn*F`` outputs, ``ceil(p/group)`` transfers each."""
    chunks = len(list(iter_chunks(layer, mapping)))
    return sum(chunks * blk.t * blk.ee * blk.nn * layer.F * -(-blk.p // group)
               for blk in iter_blocks(layer, mapping))


def _bit_exact_and_modelled(config, name, seed):
    """Run test layer ``name`` (simple mapping) on ``config`` with stalls, then without: both
    bit-exact with every counter as modelled, and the cycles too without stalls. Returns the
    layer, the mapping and the counters of the run without stalls."""
    for stall in (0.3, 0.0):
        layer, (x, w, b), mapping, compiled, _, words, state = run_test_layer(
            name, "simple", config, stall=stall, seed=seed, max_cycles=400000)
        ofmap = unpack_outputs(config, compiled, words)
        assert np.array_equal(ofmap, reference(config, layer, x, w, b)), (name, stall)
        c = state["counters"]
        model = model_layer(config, layer, mapping, ifmap=x)
        wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
        assert not wrong, f"{name} {mapping}: model vs RTL {wrong}"
    assert model.cycles == c["cycles"], (model.cycles, c["cycles"])
    return layer, mapping, c


@pytest.mark.parametrize("group", sorted(PSUM_GROUPS))
@pytest.mark.parametrize("name", ["multipass_n1", "stride2_groups", "fc"])
def test_psum_groups_bit_exact_and_modelled(name, group):
    # bit-exact under stalls, every counter as modelled; without stalls the cycles too, and the
    # RTL's own counters show ceil(p/g) transfers per output on both psum networks and the reads
    config = PSUM_GROUPS[group]
    g = config.psum_group
    layer, mapping, c = _bit_exact_and_modelled(config, name, seed=3)
    blocks = list(iter_blocks(layer, mapping))
    if name == "multipass_n1":
        # the case that shows grouping: blocks of several filters, some not a multiple of g
        assert any(blk.p > 1 for blk in blocks)
        assert g == 1 or any(blk.p % g for blk in blocks)
    transfers = _psum_transfers_per_network(layer, mapping, g)
    for counter in ("noc_psum_transfers", "noc_output_transfers", "glb_psum_reads"):
        assert c[counter] == transfers, (counter, c[counter], transfers)


#: Filters loaded one, four and eight values a transfer (``tiny`` moves two; eight is a word
#: from each of two filter banks).
FILTER_GROUPS = {"filter1": TINY.replace(filter_group=1),
                 "filter4": TINY.replace(filter_group=4),
                 "filter8_two_banks": TINY.replace(glb_filter_banks=2, filter_group=8)}


@pytest.mark.parametrize("group", sorted(FILTER_GROUPS))
@pytest.mark.parametrize("name", ["multipass_n1", "stride2_groups", "fc"])
def test_filter_groups_bit_exact_and_modelled(name, group):
    # bit-exact under stalls with every counter as modelled; without stalls the cycles too
    # (the LOAD passes' among them: with 3 rows, g = 4 waits for the PEs and g = 1 does not),
    # and ceil(p*q*S/g) filter transfers per PE row and LOAD
    config = FILTER_GROUPS[group]
    g = config.filter_group
    layer, mapping, c = _bit_exact_and_modelled(config, name, seed=5)
    transfers = sum(blk.t * blk.r * layer.R * -(-(blk.p * q * layer.S) // g)
                    for blk in iter_blocks(layer, mapping) for _, q in iter_chunks(layer, mapping))
    assert c["noc_filter_transfers"] == c["glb_filter_reads"] == transfers


#: The PE's ifmap ring: taking the next row during a row's last window (``tiny``) or refilling
#: after each row (as the board presets do); psum FIFOs of a window's worth (``tiny``), of 2,
#: or of 1 (the board presets).
PE_RING_FIFO = {"no_lookahead": TINY.replace(ifmap_lookahead=False),
                "fifo2": TINY.replace(psum_fifo_depth=2),
                "fifo1_board_like": TINY.replace(ifmap_lookahead=False, psum_fifo_depth=1)}


@pytest.mark.parametrize("variant", sorted(PE_RING_FIFO))
@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "fc"])
def test_ring_and_fifo_variants_bit_exact_and_modelled(name, variant):
    # the cycle model follows the PE's ring and FIFO depth: bit-exact under stalls, every
    # counter as modelled, the cycles too without stalls; and the layer takes no fewer
    # cycles than with tiny's lookahead and window-deep FIFOs (more on the multipass layer:
    # fc has one output column, so its output network has no one to serve in turn)
    layer, mapping, c = _bit_exact_and_modelled(PE_RING_FIFO[variant], name, seed=6)
    with_both = model_layer(TINY, layer, mapping).cycles
    assert c["cycles"] > with_both if name != "fc" else c["cycles"] >= with_both


#: Buffer-reader and output FIFO depths: one entry (the iCEBreaker preset's) and deeper than
#: the default 4.
FIFO_DEPTHS = {"one_entry": TINY.replace(reader_fifo_depth=1, output_fifo_depth=1),
               "deep": TINY.replace(reader_fifo_depth=8, output_fifo_depth=8)}


@pytest.mark.parametrize("variant", sorted(FIFO_DEPTHS))
def test_fifo_depths_bit_exact_and_modelled(variant):
    # bit-exact under stalls with every counter as modelled; without stalls the model's cycles
    # are the RTL's when the FIFOs are at least EXACT_MIN_FIFO_DEPTH deep, and otherwise an
    # estimate that is labelled so and below the RTL's (shallow FIFOs only cost cycles)
    from rsaccel.sim.perf_model import EXACT_MIN_FIFO_DEPTH
    config = FIFO_DEPTHS[variant]
    name = "multipass_n1"
    for stall in (0.3, 0.0):
        layer, (x, w, b), mapping, compiled, _, words, state = run_test_layer(
            name, "simple", config, stall=stall, seed=7, max_cycles=400000)
        assert state["error"] == CoreError.NONE
        assert np.array_equal(unpack_outputs(config, compiled, words),
                              reference(config, layer, x, w, b)), stall
        c = state["counters"]
        model = model_layer(config, layer, mapping, ifmap=x)
        wrong = {k: (model.counts[k], c[k]) for k in COUNT_NAMES if model.counts[k] != c[k]}
        assert not wrong, f"{variant}: model vs RTL {wrong}"
    default = model_layer(TINY, layer, mapping, ifmap=x).cycles
    if min(config.reader_fifo_depth, config.output_fifo_depth) >= EXACT_MIN_FIFO_DEPTH:
        assert model.cycle_model == "exact"
        assert model.cycles == c["cycles"] == default, (model.cycles, c["cycles"])
    else:
        assert model.cycle_model == "estimate"
        assert model.cycles <= c["cycles"] and default < c["cycles"], (model.cycles,
                                                                       c["cycles"])


def test_without_perf_counters_layers_run_and_counters_read_zero():
    # the counters and totals are not built: the layer is still bit-exact under stalls, every
    # counter reads 0 (the same layer with counters counts MACs and cycles)
    config = TINY.replace(perf_counters=False)
    layer, (x, w, b), mapping, compiled, _, words, state = run_test_layer(
        "stride2_groups", "simple", config, stall=0.3, seed=8, max_cycles=400000)
    assert state["error"] == CoreError.NONE
    assert np.array_equal(unpack_outputs(config, compiled, words),
                          reference(config, layer, x, w, b))
    assert set(state["counters"].values()) == {0}, state["counters"]
