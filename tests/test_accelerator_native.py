"""The accelerator under Verilator with the C++ testbench (``verilator-cpp``).

The same layers as the cocotb tests, checked the same way (bit-exact against the golden model,
every access counter as the analytical model predicts), and cycle for cycle equal to the cocotb
Verilator run of the same job when neither stream stalls.
"""

import pytest

from rsaccel import preset
from rsaccel.sim import runtime
from rsaccel.sim.layer_cases import TEST_LAYERS, layer_tensors
from rsaccel.sim.runtime import AcceleratorError, run_layer
from rsaccel.sim.verilator_native import _parse_result

from test_accelerator_cocotb import check

TINY = preset("tiny")
pytestmark = pytest.mark.xdist_group("hdl-accelerator-tiny")


@pytest.mark.parametrize("name", sorted(TEST_LAYERS))
def test_layers_with_stalls(name, hdl_build_root):
    layer, zeros = TEST_LAYERS[name]
    check(layer, zeros, seed=len(name) + 1, simulator="verilator-cpp",
          build_root=hdl_build_root, stall=0.3)


@pytest.mark.parametrize("name", ["fc", "relu_shift_pad_multipass", "stride2_groups"])
def test_unstalled_run_matches_cocotb_to_the_cycle(name, hdl_build_root):
    layer, zeros = TEST_LAYERS[name]
    native, cocotb = (check(layer, zeros, seed=2, simulator=sim, build_root=hdl_build_root,
                            stall=0.0, mapper="cycles")
                      for sim in ("verilator-cpp", "verilator"))
    assert native.counters == cocotb.counters
    assert native.counters["cycles"] == native.model["cycles"]


def test_rlc_layer(hdl_build_root):
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    check(layer, zeros, seed=6, simulator="verilator-cpp", build_root=hdl_build_root,
          stall=0.25, rlc=True)


def test_stalls_are_reproducible_from_the_seed(hdl_build_root):
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    x, w, b = layer_tensors(TINY, layer, seed=0, zeros=zeros)
    runs = [run_layer(TINY, layer, x, w, b, simulator="verilator-cpp", stall=0.4, seed=seed,
                      build_root=hdl_build_root).counters for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    # the stalls are felt: both seeds take longer than no stalls, by different amounts
    plain = run_layer(TINY, layer, x, w, b, simulator="verilator-cpp",
                      build_root=hdl_build_root).counters
    assert plain["cycles"] < runs[0]["cycles"] != runs[2]["cycles"] > plain["cycles"]
    assert runs[0]["stall_in_cycles"] > plain["stall_in_cycles"]


def test_bad_opcode_is_reported(hdl_build_root, monkeypatch):
    real = runtime.compile_layer

    def corrupted(*args, **kwargs):
        compiled = real(*args, **kwargs)
        compiled.words.insert(0, 0x7F << 56)     # no such opcode
        return compiled

    monkeypatch.setattr(runtime, "compile_layer", corrupted)
    layer, zeros = TEST_LAYERS["fc"]
    x, w, b = layer_tensors(TINY, layer, seed=1, zeros=zeros)
    with pytest.raises(AcceleratorError, match=r"BAD_OPCODE"):
        run_layer(TINY, layer, x, w, b, simulator="verilator-cpp", build_root=hdl_build_root)


def test_missing_output_stops_at_max_cycles(hdl_build_root):
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    x, w, b = layer_tensors(TINY, layer, seed=1, zeros=zeros)
    with pytest.raises(AcceleratorError, match=r"no complete result: no result after 512 "
                                                r"cycles"):
        run_layer(TINY, layer, x, w, b, simulator="verilator-cpp", build_root=hdl_build_root,
                  max_cycles=500)


def test_result_parser():
    result = _parse_result("frames 2\ncycles 99\nstopped no result after 5 cycles\nirq 1\n"
                           "reg status 16\nreg cycles 70\nwords\n00000000000000ff\n"
                           "8000000000000001\n")
    assert result == {"frames": 2, "harness_cycles": 99, "stopped": "no result after 5 cycles",
                      "irq": 1, "registers": {"status": 16, "cycles": 70},
                      "words": [0xFF, (1 << 63) | 1]}


def test_unknown_simulator_is_refused():
    layer, zeros = TEST_LAYERS["fc"]
    x, w, b = layer_tensors(TINY, layer, seed=1, zeros=zeros)
    with pytest.raises(ValueError, match=r"Simulator must be one of verilator, icarus, "
                                         r"verilator-cpp, not 'vcs'"):
        run_layer(TINY, layer, x, w, b, simulator="vcs")


def test_stall_out_of_range_is_refused(hdl_build_root):
    from rsaccel.sim.verilator_native import build_native
    build = build_native(TINY, hdl_build_root)
    with pytest.raises(ValueError, match=r"stall must be in \[0, 1\), not 1.0"):
        build.run([], expect_frames=1, registers=[], stall=1.0)
