"""Mapper, analytical model and network shapes: pure Python (the RTL comparison of the model's
counts is in test_core_amaranth.py and test_accelerator_cocotb.py)."""

import json
import re

import numpy as np
import pytest

from rsaccel import preset
from rsaccel.cli import main
from rsaccel.gen.compiler import (Layer, LayerError, Mapping, compile_layer, iter_block_orders,
                                  plan_mapping, reused_blocks)
from rsaccel.gen.mapper import candidate_mappings, check_mapping, choose_mapping
from rsaccel.gen.networks import NETWORKS, load_network, network
from rsaccel.sim.layer_cases import TEST_LAYERS, layer_tensors
from rsaccel.sim.perf_model import COUNT_NAMES, EnergyCosts, model_layer

TINY = preset("tiny")
EYERISS = preset("eyeriss")


@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_every_candidate_compiles_to_the_modelled_stream(name):
    """Each legal mapping compiles, and the model's stream word counts match the compiler's."""
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=1, zeros=zeros)
    candidates = candidate_mappings(TINY, layer)
    assert plan_mapping(TINY, layer) in candidates or len(candidates) > 0
    rng = np.random.default_rng(len(name))
    for index in rng.permutation(len(candidates))[:25]:
        mp = candidates[int(index)]
        compiled = compile_layer(TINY, layer, x, w, b, mp)
        model = model_layer(TINY, layer, mp, ifmap=x)
        assert model.counts["words_in"] == len(compiled.words), mp
        assert model.counts["words_out"] == sum(r["words"] for r in compiled.reads) + 1, mp
        assert model.counts["macs"] + model.counts["gated_macs"] == compiled.mac_slots, mp
        assert model.passes == compiled.passes, mp


def test_reused_block_counts_follow_the_block_walk():
    """The model's per-shape count of blocks that reuse the rows left in the buffer equals
    what the compiler's block walk marks, on every test layer's candidates and AlexNet's."""
    cases = [(TINY, layer) for layer, _ in TEST_LAYERS.values()]
    cases += [(EYERISS, nl.layer) for nl in network("alexnet", batch=4)
              if nl.name in ("conv1", "conv2", "fc6")]
    seen = 0
    for config, layer in cases:
        for mp in candidate_mappings(config, layer)[::7]:
            for double, reuse in ((True, True), (False, True), (True, False)):
                walked = {}
                for blk, _, order, reused in iter_block_orders(config, layer, mp,
                                                               double_ifmap=double,
                                                               reuse_rows=reuse):
                    if reused:
                        key = (blk.nn, blk.ee, blk.t, blk.p)
                        walked[key] = walked.get(key, 0) + 1
                        assert order[0] == prev_order[-1]
                    prev_order = order
                assert reused_blocks(config, layer, mp, double_ifmap=double,
                                     reuse_rows=reuse) == walked, (layer, mp, double, reuse)
                seen += sum(walked.values())
    assert seen > 100


@pytest.mark.parametrize("change, message", [
    (dict(q=5), "q*S=15 exceeds ifmap_spad_depth=12"),
    (dict(t=2), "(t/h)*r*R=6 exceeds the array height rows=3"),
    (dict(r=2), "(t/h)*r*R=6 exceeds the array height rows=3"),
    (dict(t=4, h=2), "(t/h)*r*R=6 exceeds the array height rows=3"),
    (dict(e=5), "h*e=5 exceeds the array width cols=4"),
    (dict(t=2, h=2, e=3), "h*e=6 exceeds the array width cols=4"),
    (dict(t=3, h=2, e=1), "h=2 sets side by side do not divide the t=3 sets"),
    (dict(h=0), "Mapping field 'h' must be a positive integer, not 0"),
    (dict(p=9), "p=9 exceeds psum_spad_depth=8"),
    (dict(n=3), "n=3 exceeds the batch N=2"),
    (dict(p=8, q=3), "p*q*S=72 exceeds filter_spad_depth=64"),
    (dict(q=0), "Mapping field 'q' must be a positive integer, not 0"),
])
def test_check_mapping_names_the_limit(change, message):
    layer = Layer(N=2, C=8, M=16, H=8, W=8, R=3, S=3)
    fields = dict(e=2, t=1, p=2, q=2, n=1)
    fields.update(change)
    with pytest.raises(LayerError, match=re.escape(message)):
        check_mapping(TINY, layer, Mapping(active_pes=0, **fields))


@pytest.mark.parametrize("fields, message", [
    (dict(q=2, r=2, n=1), "r=2 channel sets of q=2 do not divide the channels per group "
                          "C/groups=6"),
    (dict(q=1, r=3, n=2), "r=3 with stride U=1 >= R=1 needs n=1"),
    (dict(q=1, r=0, n=1), "Mapping field 'r' must be a positive integer, not 0"),
])
def test_channel_set_limits_are_named(fields, message):
    layer = Layer(N=2, C=6, M=4, H=6, W=6, R=1, S=3)
    with pytest.raises(LayerError, match=message.replace("*", r"\*")):
        check_mapping(TINY, layer, Mapping(e=2, t=1, p=2, active_pes=0, **fields))


def test_candidates_include_channel_sets():
    # an R = 1 layer on 3 rows and C = 6: r channel sets of q channels need r*q to divide 6,
    # so (r, q) = (3, 1), (3, 2), (2, 1), (2, 3) are legal and (2, 2) is not
    layer = Layer(N=1, C=6, M=4, H=6, W=6, R=1, S=3)
    candidates = candidate_mappings(TINY, layer)
    rs = {(mp.r, mp.q) for mp in candidates}
    assert {(3, 1), (3, 2), (2, 1), (2, 3)} <= rs
    assert (2, 2) not in rs
    for mp in candidates:
        check_mapping(TINY, layer, mp)
        assert mp.active_pes == mp.t * mp.r * layer.R * mp.e


def test_buffer_limit_is_named():
    # 64 images of 3 x 100 ifmap rows per pass cannot fit a 1024-word buffer
    layer = Layer(N=64, C=1, M=1, H=3, W=60, R=3, S=3)
    with pytest.raises(LayerError, match="global-buffer data words, more than the 1024"):
        check_mapping(TINY, layer, Mapping(e=1, t=1, p=1, q=1, n=64, active_pes=3))


def test_batches_above_a_pe_commands_rows_are_split():
    # a PE command convolves at most 255 rows (images of a pass): a 1 x 1 layer of 600
    # images, whose rows fit the buffer many times over, maps with n <= 255, and n = 256 is
    # refused by the mapper and by the compiler
    layer = Layer(N=600, C=1, M=1, H=1, W=1, R=1, S=1)
    eyeriss = preset("eyeriss")
    candidates = candidate_mappings(eyeriss, layer)
    assert candidates and max(mp.n for mp in candidates) == 200     # 600 in three blocks
    assert plan_mapping(eyeriss, layer).n <= 255
    big = Mapping(e=1, t=1, p=1, q=1, n=256, active_pes=1)
    with pytest.raises(LayerError, match="n=256 exceeds the 255 rows a PE command convolves"):
        check_mapping(eyeriss, layer, big)
    x, w, b = layer_tensors(eyeriss, layer, seed=0)
    with pytest.raises(LayerError, match="n=256 exceeds the 255 rows a PE command convolves"):
        compile_layer(eyeriss, layer, x, w, b, big)


def test_impossible_layer_is_explained():
    with pytest.raises(LayerError, match="R=4 exceeds the array height rows=3"):
        candidate_mappings(TINY, Layer(N=1, C=1, M=1, H=8, W=8, R=4, S=3))
    # even one output row of one image with one filter and channel overflows a small buffer
    # (F = 59 outputs over 3 PE rows: 20 elements per row, 60 psums in 30 words, 60 outputs
    # in 15 words, 1 bias word, 3 ifmap rows of 70 in 53 words: 99)
    small = TINY.replace(glb_bank_depth=16, psum_group=1)
    with pytest.raises(LayerError, match="needs 99 global-buffer data words, more than the 64"):
        candidate_mappings(small, Layer(N=1, C=1, M=1, H=8, W=70, R=3, S=12))
    # with psums in pairs, p = 1 takes 2 elements per output: 40 per row, 120 psums in 60
    # words, 120 outputs in 30 words, 1 bias word, 53 ifmap words: 144
    with pytest.raises(LayerError, match="needs 144 global-buffer data words, more than the 64"):
        candidate_mappings(small.replace(psum_group=2),
                           Layer(N=1, C=1, M=1, H=8, W=70, R=3, S=12))


@pytest.mark.parametrize("objective", ["energy", "cycles"])
def test_choice_is_the_best_candidate(objective):
    layer = Layer(N=2, C=6, M=10, H=9, W=9, R=3, S=3, pad=1)
    mapping, model, count = choose_mapping(TINY, layer, objective=objective, zero_fraction=0.3)
    scores = []
    for mp in candidate_mappings(TINY, layer):
        # the mapper ranks with the fast cycle estimate (energy does not depend on it)
        m = model_layer(TINY, layer, mp, zero_fraction=0.3, cycle_model="estimate")
        scores.append(m.total_energy if objective == "energy" else m.cycles)
    assert count == len(scores) > 10
    best = model.total_energy if objective == "energy" else model.cycles
    assert best == min(scores)
    assert len(set(scores)) > 1     # the objective tells the mappings apart


def test_refine_takes_the_exact_best_of_the_estimates_top():
    # a layer whose second-ranked candidate by the estimate is faster, exactly, than its first
    # (the first of a few such layers: which ones are depends on the model's details)
    for M, H in ((16, 13), (24, 9), (24, 13)):
        layer = Layer(N=2, C=48, M=M, H=H, W=H, R=3, S=3, pad=1)
        ranked = sorted(candidate_mappings(EYERISS, layer), key=lambda mp: (
            lambda m: (m.cycles, m.total_energy))(model_layer(
                EYERISS, layer, mp, zero_fraction=0.7, cycle_model="estimate")))
        exact = [model_layer(EYERISS, layer, mp, zero_fraction=0.7, cycle_model="exact").cycles
                 for mp in ranked[:2]]
        if exact[1] < exact[0]:
            break
    else:
        pytest.fail("no layer of the list has a second-ranked candidate faster than the first")
    plain, plain_model, _ = choose_mapping(EYERISS, layer, objective="cycles",
                                           zero_fraction=0.7, cycle_model="exact")
    refined, model, _ = choose_mapping(EYERISS, layer, objective="cycles", zero_fraction=0.7,
                                       refine=2)
    assert plain == ranked[0] and plain_model.cycles == exact[0]
    assert model.cycle_model == "exact" and model.cycles == min(exact) < exact[0]
    assert refined == ranked[exact.index(min(exact))] != plain
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="refine must be an integer of at least 1"):
            choose_mapping(TINY, layer, refine=bad)


def test_zero_fraction_extremes_and_exact_ifmap_agree():
    layer = Layer(N=1, C=4, M=5, H=7, W=7, R=3, S=3, pad=1)
    mp = plan_mapping(TINY, layer)
    dense = model_layer(TINY, layer, mp, zero_fraction=0.0)
    empty = model_layer(TINY, layer, mp, zero_fraction=1.0)
    zeros = model_layer(TINY, layer, mp, ifmap=np.zeros((1, 4, 7, 7), dtype=int))
    ones = model_layer(TINY, layer, mp, ifmap=np.ones((1, 4, 7, 7), dtype=int))
    assert empty.counts == zeros.counts
    slots = dense.counts["macs"] + dense.counts["gated_macs"]
    assert zeros.counts["macs"] == 0 and zeros.counts["gated_macs"] == slots
    # with no zero inside, only the padding is gated, whatever the fraction model says
    assert ones.counts == {k: round(v) for k, v in dense.counts.items()}
    assert 0 < dense.counts["gated_macs"] < slots
    # an expected count is the mean of exact ones: half the values zero on average
    rng = np.random.default_rng(0)
    exact = [model_layer(TINY, layer, mp, ifmap=(rng.random((1, 4, 7, 7)) >= 0.5).astype(int))
             .counts["gated_macs"] for _ in range(200)]
    half = model_layer(TINY, layer, mp, zero_fraction=0.5).counts["gated_macs"]
    assert abs(np.mean(exact) - half) < 0.03 * half


def test_energy_uses_the_costs():
    layer = Layer(N=1, C=2, M=3, H=6, W=6, R=3, S=3)
    mp = plan_mapping(TINY, layer)
    base = model_layer(TINY, layer, mp)
    dearer = model_layer(TINY, layer, mp, costs=EnergyCosts(dram=400.0))
    k, d = base.counts, base.dram_words
    assert sum(base.energy["dram"].values()) == 200.0 * (k["words_in"] + k["words_out"]) * TINY.lanes
    assert sum(dearer.energy["dram"].values()) == 2 * sum(base.energy["dram"].values())
    assert base.energy["mac"]["mac"] == k["macs"]
    # a psum transfer moves psum_group values and a filter transfer filter_group values, and
    # each costs as many array accesses
    assert TINY.psum_group == 2 and TINY.filter_group == 2
    assert sum(base.energy["array"].values()) == 2.0 * (
        2 * k["noc_filter_transfers"] + k["noc_ifmap_transfers"]
        + 2 * (k["noc_psum_transfers"] + k["noc_output_transfers"]))
    assert sum(d.values()) == k["words_in"] + k["words_out"]


def test_alexnet_shapes_match_the_reference():
    # reference section 5: MACs for 4 images; section 6: output sizes
    macs = {"conv1": 421.7e6, "conv2": 895.8e6, "conv3": 598.1e6, "conv4": 448.6e6,
            "conv5": 299.0e6}
    sizes = {"conv1": 55, "conv2": 27, "conv3": 13, "conv4": 13, "conv5": 13}
    layers = {nl.name: nl.layer for nl in network("alexnet", batch=4)}
    for name, count in macs.items():
        assert layers[name].E == layers[name].F == sizes[name]
        assert abs(layers[name].macs - count) < 0.001 * count, name


@pytest.mark.parametrize("name, gmacs", [
    ("vgg16", 15.47), ("resnet50", 4.09), ("mobilenet_v1", 0.569), ("alexnet", 0.724)])
def test_network_mac_totals(name, gmacs):
    """Published per-image MAC counts (conv and FC layers) within 1.5 %."""
    total = sum(nl.layer.macs * nl.repeat for nl in network(name))
    assert abs(total / 1e9 - gmacs) < 0.015 * gmacs, total


def test_every_shipped_layer_maps_on_eyeriss():
    # every layer has legal mappings, all within the array, and the model runs on a spread
    # of them (scoring every candidate of every layer, as choose_mapping does, takes over a
    # minute; the choice itself is checked in test_choice_is_the_best_candidate)
    for name in NETWORKS:
        for nl in network(name):
            candidates = candidate_mappings(EYERISS, nl.layer)
            assert all(mp.active_pes <= EYERISS.num_pes for mp in candidates)
            for mp in candidates[::max(1, len(candidates) // 8)]:
                model = model_layer(EYERISS, nl.layer, mp, cycle_model="estimate")
                assert model.cycles > 0 and model.counts["macs"] > 0, (nl.name, mp)


def test_network_file(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps([{"name": "a", "N": 1, "C": 2, "M": 3, "H": 6, "W": 6,
                                 "R": 3, "S": 3, "repeat": 2}]))
    (entry,) = load_network(path)
    assert entry.name == "a" and entry.repeat == 2 and entry.layer.E == 4
    path.write_text(json.dumps([{"name": "a", "N": 1, "C": 2, "M": 3, "H": 6, "W": 6,
                                 "R": 3, "S": 3, "repeat": 0}]))
    with pytest.raises(LayerError, match="repeat must be a positive integer"):
        load_network(path)


def _layer_file(tmp_path, **fields):
    spec = dict(N=1, C=4, M=8, H=8, W=8, R=3, S=3, pad=1)
    spec.update(fields)
    path = tmp_path / "layer.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_map_layer_table_and_json(tmp_path, capsys):
    layer = _layer_file(tmp_path)
    assert main(["map", "--preset", "tiny", "--layer", layer]) == 0
    out = capsys.readouterr().out
    assert "mapping: e=" in out and "| dram |" in out and "per MAC" in out
    assert main(["map", "--preset", "tiny", "--layer", layer, "--json",
                 "--objective", "cycles", "--zero-fraction", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["layers"]
    assert report["objective"] == "cycles"
    assert report["cycle_model"] == row["cycle_model"] == "exact"
    assert set(COUNT_NAMES) <= set(row["counts"])
    assert row["macs"] == 1 * 8 * 8 * 8 * 4 * 9
    assert row["counts"]["gated_macs"] > 0
    mp = Mapping(**row["mapping"])
    check_mapping(TINY, Layer(N=1, C=4, M=8, H=8, W=8, R=3, S=3, pad=1), mp)


@pytest.mark.slow
def test_map_network(capsys):
    # AlexNet on eyeriss, with the estimate: over two minutes (test_map_network_file is CI's)
    assert main(["map", "--network", "alexnet", "--batch", "4", "--cycle-model",
                 "estimate"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split("|")[1].strip() for line in out[2:]]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8", "total"]


def test_map_network_file(tmp_path, capsys):
    # a network file of a conv, a repeated conv and an FC layer on tiny: one row each, in order,
    # each with its own layer's MACs (one instance of the repeated one), and a total row
    path = tmp_path / "net.json"
    layers = [dict(name="c1", N=2, C=3, M=4, H=8, W=8, R=3, S=3, pad=1),
              dict(name="c2", N=2, C=4, M=4, H=8, W=8, R=3, S=3, pad=1, repeat=2),
              dict(name="fc", N=2, C=4, M=6, H=3, W=3, R=3, S=3)]
    path.write_text(json.dumps(layers))
    assert main(["map", "--preset", "tiny", "--network", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in report["layers"]] == ["c1", "c2", "fc"]
    macs = [2 * 4 * 64 * 3 * 9, 2 * 4 * 64 * 4 * 9, 2 * 6 * 4 * 9]
    assert [row["macs"] for row in report["layers"]] == macs
    assert main(["map", "--preset", "tiny", "--network", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split("|")[1].strip() for line in out[2:]]
    assert names == ["c1", "c2", "fc", "total"]


@pytest.mark.parametrize("argv, message", [
    (["--network", "alexnet", "--layer", "L"], "exactly one of --layer and --network"),
    (["--network", "nosuchnet"], "neither a known network"),
    (["--network", "alexnet", "--zero-fraction", "1.5"], "--zero-fraction must be within 0..1"),
    (["--network", "alexnet", "--batch", "0"], "--batch must be at least 1"),
    (["--network", "alexnet", "--stream-bandwidth", "0"], "--stream-bandwidth must be positive"),
    (["--network", "alexnet", "--refine", "0"], "--refine: must be at least 1, not 0"),
    (["--network", "alexnet", "--refine", "x"], "--refine: expected a whole number"),
    (["--layer", "LAYER_R4"], "R=4 exceeds the array height rows=3"),
])
def test_map_errors(tmp_path, capsys, argv, message):
    argv = [_layer_file(tmp_path, R=4, H=9, W=9) if a == "LAYER_R4" else a for a in argv]
    assert main(["map", "--preset", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_pass_timing_refuses_what_it_does_not_model():
    from rsaccel.gen.compiler import iter_blocks, load_pass_program, run_pass_program
    from rsaccel.sim.nest_model import Nest
    from rsaccel.sim.pass_timing import run_pass_cycles
    layer = Layer(N=1, C=2, M=2, H=6, W=6, R=3, S=3)
    mp = plan_mapping(TINY, layer)
    blk = next(iter_blocks(layer, mp))
    run = run_pass_program(TINY, layer, blk, mp.q, first_chunk=True, last_chunk=True)
    cycles, _ = run_pass_cycles(TINY, layer, run, blk.t, blk.ee)
    assert cycles > run.output["count"]
    # one ifmap row more than the strip's PEs take: the RTL would stop with NO_DESTINATION
    levels = list(run.ifmap.levels)
    count, *steps = levels[1]
    levels[1] = (count + 1, *steps)
    extra = run._replace(ifmap=Nest(base=run.ifmap.base, levels=levels))
    with pytest.raises(ValueError, match="no destination"):
        run_pass_cycles(TINY, layer, extra, blk.t, blk.ee)
    with pytest.raises(ValueError, match="models RUN passes"):
        run_pass_cycles(TINY, layer, load_pass_program(TINY, layer, blk, mp.q), blk.t, blk.ee)
    with pytest.raises(ValueError, match="zero skipping"):
        run_pass_cycles(TINY.replace(zero_skipping=True), layer, run, blk.t, blk.ee)


def test_exact_cycles_cache_is_shared_safely():
    from rsaccel.sim.perf_model import exact_run_cycles
    narrow = Layer(N=1, C=2, M=2, H=6, W=6, R=3, S=3)
    wide = Layer(N=1, C=2, M=2, H=6, W=8, R=3, S=3)
    alone = exact_run_cycles(TINY, wide, plan_mapping(TINY, wide))[0]
    cache = {}
    exact_run_cycles(TINY, narrow, plan_mapping(TINY, narrow), cache)
    assert exact_run_cycles(TINY, wide, plan_mapping(TINY, wide), cache)[0] == alone


def test_model_and_compiler_refuse_a_bad_channel_set_mapping():
    layer = Layer(N=1, C=6, M=4, H=6, W=6, R=1, S=3)
    bad = Mapping(e=2, t=1, p=2, q=2, n=1, r=2, active_pes=4)
    x = np.zeros((1, 6, 6, 6), dtype=int)
    with pytest.raises(LayerError, match="do not divide"):
        model_layer(TINY, layer, bad)
    with pytest.raises(LayerError, match="do not divide"):
        compile_layer(TINY, layer, x, np.zeros((4, 6, 1, 3), dtype=int),
                      np.zeros(4, dtype=int), bad)
