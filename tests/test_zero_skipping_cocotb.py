"""The accelerator with zero-skipping PEs as generated Verilog, under Verilator and Icarus."""

import pytest

from rsaccel.sim.layer_cases import TEST_LAYERS

from test_accelerator_cocotb import TINY, check

SKIPPING = TINY.replace(zero_skipping=True)
pytestmark = pytest.mark.xdist_group("hdl-accelerator-tiny-skipping")


@pytest.mark.parametrize("name", [
    # Icarus takes over a minute on the multi-pass layer: CI runs it under Verilator only (below)
    pytest.param("relu_shift_pad_multipass", marks=pytest.mark.slow),
    "stride2_groups", "all_zero"])
def test_skipping_layers_icarus_match_verilator(name, hdl_build_root):
    # bit-exact with random stalls on both stream ports, every counter equal to the model's,
    # and both simulators agree cycle for cycle
    layer, zeros = TEST_LAYERS[name]
    runs = [check(layer, zeros, seed=len(name), simulator=sim, build_root=hdl_build_root,
                  config=SKIPPING) for sim in ("verilator", "icarus")]
    assert runs[0].counters == runs[1].counters
    assert runs[0].counters["gated_macs"] > 0


def test_skipping_multipass_layer_verilator(hdl_build_root):
    # channels and filters over several passes, with random stalls: bit-exact, modelled counts
    layer, zeros = TEST_LAYERS["relu_shift_pad_multipass"]
    result = check(layer, zeros, seed=3, simulator="verilator", build_root=hdl_build_root,
                   config=SKIPPING)
    assert result.passes > 2 and result.counters["gated_macs"] > 0
