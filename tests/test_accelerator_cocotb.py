"""The generated accelerator (AXI4-Stream + AXI4-Lite top level) under cocotb: whole layers.

Verilator runs every layer of the shared list with random stalls on both AXI4-Streams, plus
hypothesis-generated layers; Icarus runs the same list and must report the same counters.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rsaccel import preset
from rsaccel.gen.compiler import Layer, LayerError, Mapping, compile_layer
from rsaccel.sim.golden import conv2d
from rsaccel.sim.layer_cases import SIDE_BY_SIDE_CASES, TEST_LAYERS, layer_tensors
from rsaccel.sim.perf_model import COUNT_NAMES
from rsaccel.sim.runtime import AcceleratorError, run_layer

TINY = preset("tiny")
pytestmark = pytest.mark.xdist_group("hdl-accelerator-tiny")


def check(layer, zeros, seed, simulator, build_root, stall=0.25, mapper="energy", rlc=False,
          config=TINY, mapping=None):
    x, w, b = layer_tensors(config, layer, seed=seed, zeros=zeros)
    result = run_layer(config, layer, x, w, b, simulator=simulator, build_root=build_root,
                       seed=seed, stall=stall, mapper=mapper, mapping=mapping, rlc_in=rlc,
                       rlc_out=rlc)
    ref = conv2d(x, w, b, stride=layer.stride, pad=layer.pad, groups=layer.groups,
                 relu=layer.relu, out_shift=layer.out_shift)
    bad = np.argwhere(result.ofmap != ref)
    assert bad.size == 0, (f"{layer}: first mismatch at {tuple(bad[0])}: got "
                           f"{result.ofmap[tuple(bad[0])]}, expected {ref[tuple(bad[0])]}")
    compiled = compile_layer(config, layer, x, w, b, Mapping(**result.mapping), rlc_in=rlc,
                             rlc_out=rlc)
    c = result.counters
    assert c["macs"] + c["gated_macs"] == compiled.mac_slots
    assert c["words_in"] == len(compiled.words)
    # the analytical model predicts every access counter exactly, whatever the stalls
    wrong = {k: (result.model["counts"][k], c[k]) for k in COUNT_NAMES
             if result.model["counts"][k] != c[k]}
    assert not wrong, f"{layer} {result.mapping}: model vs RTL {wrong}"
    return result


@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_layers_verilator(name, hdl_build_root):
    layer, zeros = TEST_LAYERS[name]
    check(layer, zeros, seed=len(name), simulator="verilator", build_root=hdl_build_root)


@pytest.mark.parametrize("name", [
    # the multipass layer takes Icarus about a minute: CI runs it under Verilator alone
    # (test_layers_verilator, test_layers_rlc_verilator); -m slow compares the two
    pytest.param(name, marks=pytest.mark.slow) if name == "relu_shift_pad_multipass" else name
    for name in sorted(TEST_LAYERS)])
def test_layers_icarus_match_verilator(name, hdl_build_root):
    layer, zeros = TEST_LAYERS[name]
    # the compiler's simple mapping rule here (the other tests use the mapper's choice)
    icarus = check(layer, zeros, seed=5, simulator="icarus", build_root=hdl_build_root,
                   mapper="simple")
    verilator = check(layer, zeros, seed=5, simulator="verilator", build_root=hdl_build_root,
                      mapper="simple")
    # same stimulus, same stalls: cycle-exact agreement of every counter
    assert icarus.counters == verilator.counters


@pytest.mark.parametrize("name", ["side_h2_rebalanced", "side_grid_batch2"])
def test_sets_side_by_side_icarus_match_verilator(name, hdl_build_root):
    # filter sets side by side (h > 1) as generated Verilog, with random stalls on both
    # AXI4-Streams: bit-exact, modelled counters, and the two simulators agree on every counter
    config, layer, mapping = SIDE_BY_SIDE_CASES[name]
    assert config == TINY
    runs = [check(layer, 0.3, seed=len(name), simulator=sim, build_root=hdl_build_root,
                  mapping=mapping) for sim in ("icarus", "verilator")]
    assert runs[0].mapping["h"] == 2
    assert runs[0].counters == runs[1].counters


def test_wide_filter_transfers_icarus_match_verilator(hdl_build_root):
    # filters eight values a transfer, one word from each of two filter banks read in the same
    # cycle, as generated Verilog with random stalls: bit-exact, modelled counters, and the two
    # simulators agree on every counter (a 1 x 7 filter row: one group of a word from each bank;
    # the multi-pass layer takes Icarus over a minute, and tests/test_core_amaranth.py runs it)
    config = TINY.replace(glb_filter_banks=2, filter_group=8)
    layer, zeros = TEST_LAYERS["wide_filter"]
    runs = [check(layer, zeros, seed=4, simulator=sim, build_root=hdl_build_root, config=config)
            for sim in ("icarus", "verilator")]
    assert runs[0].counters == runs[1].counters
    assert runs[0].counters["noc_filter_transfers"] == runs[0].counters["glb_filter_reads"] > 0


@st.composite
def layers(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    C = groups * draw(st.integers(1, 4))
    M = groups * draw(st.integers(1, 5))
    R = draw(st.integers(1, TINY.rows))
    S = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 1))
    H = draw(st.integers(max(1, R - 2 * pad), 9))
    W = draw(st.integers(max(1, S - 2 * pad), 9))
    return Layer(N=draw(st.integers(1, 2)), C=C, M=M, H=H, W=W, R=R, S=S, stride=stride,
                 pad=pad, groups=groups, relu=draw(st.booleans()),
                 out_shift=draw(st.sampled_from([0, 0, 3, 12])))


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers(), zeros=st.sampled_from([0.0, 0.4, 0.8]), seed=st.integers(0, 999))
def test_random_layers_verilator(layer, zeros, seed, hdl_build_root):
    check(layer, zeros, seed, "verilator", hdl_build_root)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers(), zeros=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 999))
def test_model_cycles_random_layers_verilator(layer, zeros, seed, hdl_build_root):
    # neither AXI4-Stream stalls: the model's cycles are the RTL's, to the cycle
    result = check(layer, zeros, seed, "verilator", hdl_build_root, stall=0.0)
    assert result.model["cycle_model"] == "exact"
    assert result.model["cycles"] == result.counters["cycles"], (layer, result.mapping)


def test_unsupported_layer_is_refused_before_simulation(hdl_build_root):
    layer = Layer(N=1, C=1, M=1, H=8, W=8, R=TINY.rows + 1, S=3)
    x, w, b = layer_tensors(TINY, layer, seed=0)
    with pytest.raises(LayerError, match=r"R=4 exceeds the array height rows=3"):
        run_layer(TINY, layer, x, w, b, build_root=hdl_build_root)


def test_wrong_tensor_shape_is_refused(hdl_build_root):
    layer, _ = TEST_LAYERS["fc"]
    x, w, b = layer_tensors(TINY, layer, seed=0)
    with pytest.raises(ValueError, match=r"weights must have shape \(3, 6, 3, 3\)"):
        run_layer(TINY, layer, x, w[:, :5], b, build_root=hdl_build_root)
    x = x.copy()
    x[0, 0, 0, 0] = 40000
    with pytest.raises(ValueError, match=r"ifmap value 40000 at index \(0, 0, 0, 0\)"):
        run_layer(TINY, layer, x, w, b, build_root=hdl_build_root)


@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups", "all_zero"])
def test_layers_rlc_verilator(name, hdl_build_root):
    # ifmap in and ofmap out run-length coded, random stalls on both AXI4-Streams
    layer, zeros = TEST_LAYERS[name]
    check(layer, zeros, seed=len(name), simulator="verilator", build_root=hdl_build_root,
          rlc=True)


def test_layer_rlc_icarus_match_verilator(hdl_build_root):
    # a single-pass layer (the multipass one takes Icarus a minute; Verilator runs it above)
    layer, zeros = TEST_LAYERS["stride2_groups"]
    icarus = check(layer, zeros, seed=9, simulator="icarus", build_root=hdl_build_root,
                   rlc=True)
    verilator = check(layer, zeros, seed=9, simulator="verilator", build_root=hdl_build_root,
                      rlc=True)
    assert icarus.counters == verilator.counters


def test_malformed_rlc_stream_raises(hdl_build_root, monkeypatch):
    # the first coded ifmap stream loses its last flag: the decoder rejects it, the
    # accelerator stops with BAD_RLC and the runtime says so instead of hanging
    from rsaccel.sim import runtime
    real = runtime.compile_layer

    def corrupted(*args, **kwargs):
        compiled = real(*args, **kwargs)
        first = next(i for i, word in enumerate(compiled.words) if word >> 56 == 0x06)
        coded = compiled.words[first + 1]
        compiled.words[first + 1 + coded] &= ~(1 << 63)
        return compiled

    monkeypatch.setattr(runtime, "compile_layer", corrupted)
    layer, zeros = TEST_LAYERS["stride2_groups"]
    x, w, b = layer_tensors(TINY, layer, seed=1, zeros=zeros)
    with pytest.raises(AcceleratorError, match=r"BAD_RLC \(RLC error [A-Z_]+\)"):
        run_layer(TINY, layer, x, w, b, build_root=hdl_build_root, rlc_in=True)
