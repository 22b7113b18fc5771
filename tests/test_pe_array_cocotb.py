"""The generated PE array Verilog under cocotb (Icarus and Verilator): the Amaranth cases."""

import json

import pytest

from rsaccel import preset
from rsaccel.sim.array_model import ARRAY_TEST_CASES
from rsaccel.sim.cocotb_tb.runner import build_block

TINY = preset("tiny")


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_array_cases(hdl_build_root, simulator, request):
    request.node.add_marker(pytest.mark.xdist_group(f"hdl-array-tiny-{simulator}"))
    build = build_block(TINY, simulator, hdl_build_root, block="array")
    build.run("rsaccel.sim.cocotb_tb.array_tb", test_dir=build.build_dir / "run",
              extra_env={"RSACCEL_ARRAY_CASES": json.dumps(list(range(len(ARRAY_TEST_CASES)))),
                         "RSACCEL_STALL": "0.25"})
