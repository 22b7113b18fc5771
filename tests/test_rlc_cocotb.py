"""The generated RLC decoder and encoder Verilog under cocotb with Icarus and Verilator."""

import pytest

from rsaccel import preset
from rsaccel.sim.cocotb_tb.runner import build_block

TINY = preset("tiny")


@pytest.mark.parametrize("block", ["rlc_decoder", "rlc_encoder"])
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rlc_block(hdl_build_root, simulator, block):
    build = build_block(TINY, simulator, hdl_build_root, block=block)
    for seed, stall in ((1, "0.0"), (2, "0.4")):
        build.run("rsaccel.sim.cocotb_tb.rlc_tb", test_dir=build.build_dir / f"run-{seed}",
                  extra_env={"RSACCEL_RLC_SEED": str(seed), "RSACCEL_RLC_STALL": stall})
