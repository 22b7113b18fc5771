"""The generated PE Verilog under cocotb with Icarus and Verilator: the Amaranth-simulator cases."""

import json

import pytest

from rsaccel import preset
from rsaccel.sim.cocotb_tb.runner import build_block
from rsaccel.sim.pe_model import PE_TEST_SEEDS

TINY = preset("tiny")


@pytest.mark.xdist_group("hdl-pe-tiny")
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("stall", ["0.0", "profile"])
def test_pe_random_cases(hdl_build_root, simulator, stall):
    build = build_block(TINY, simulator, hdl_build_root)
    _run(build, stall)


@pytest.mark.xdist_group("hdl-pe-tiny-skipping")
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_pe_zero_skipping(hdl_build_root, simulator):
    # the zero-skipping PE's Verilog, on the same cases with random stalls
    build = build_block(TINY.replace(zero_skipping=True), simulator, hdl_build_root)
    _run(build, "profile")


def _run(build, stall):
    build.run("rsaccel.sim.cocotb_tb.pe_tb",
              test_dir=build.build_dir / f"run-stall{stall}",
              extra_env={"RSACCEL_PE_SEEDS": json.dumps(list(PE_TEST_SEEDS)),
                         "RSACCEL_PE_DIRECTED": "1",
                         "RSACCEL_PE_STALL": stall})
