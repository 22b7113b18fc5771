"""The board self-test as generated Verilog under Icarus and Verilator.

The self-test streams a layer through the whole accelerator with LFSR stalls on both streams,
checks every output word against the golden model, writes and reads AXI4-Lite registers: it must
pass on the golden program and fail on a corrupted one, and both simulators must agree on the
cycle count and on the register read-back signature (which folds in every counter).
"""

import json

import pytest
from amaranth.back import verilog

from rsaccel import preset
from rsaccel.boards.selftest import SelfTest, SelfTestProgram, selftest_program
from rsaccel.sim.amaranth_tb import run_selftest
from rsaccel.sim.cocotb_tb.runner import HDLBuild, build_verilog

TINY = preset("tiny")
#: tiny, and the iCEBreaker's preset (one PE, one-entry FIFOs, one data bank, no counters)
CONFIGS = {"tiny": TINY, "icebreaker": preset("icebreaker")}
TOP = "rsaccel_selftest"


def _program(variant, config=TINY):
    program = selftest_program(config)
    if variant == "golden":
        return program
    expected = list(program.expected)
    value, mask, last = expected[1]
    expected[1] = (value ^ (mask & -mask), mask, last)   # flip the lowest checked bit
    return SelfTestProgram(words=program.words, expected=tuple(expected))


def _build(root, simulator, variant, config_name):
    config = CONFIGS[config_name]
    build_dir = root / f"selftest-{config_name}-{variant}-{simulator}"
    build_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(SelfTest(config, _program(variant, config), watchdog=4096), name=TOP,
                           emit_src=False)
    path = build_dir / f"{TOP}.v"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return HDLBuild(build_verilog(path, TOP, simulator, build_dir), build_dir, TOP, simulator,
                    config)


#: (config name, simulator, variant) -> result: each simulation runs once per session (all
#: these tests share one xdist group, so one worker, and never build the same directory twice
#: at once).
_RESULTS = {}
GROUP = pytest.mark.xdist_group("hdl-selftest")


def _run(root, simulator, variant, expect, config_name="tiny"):
    key = (config_name, simulator, variant)
    if key in _RESULTS:
        return _RESULTS[key]
    build = _build(root, simulator, variant, config_name)
    result_path = build.build_dir / "result.json"
    build.run("rsaccel.sim.cocotb_tb.selftest_tb", test_dir=build.build_dir / "run",
              extra_env={"RSACCEL_RESULT": str(result_path), "RSACCEL_EXPECT": expect})
    _RESULTS[key] = json.loads(result_path.read_text())
    return _RESULTS[key]


#: (simulator, configuration) pairs: Icarus runs both; Verilator, whose build of the whole
#: self-test takes about a minute, the iCEBreaker's (the accelerator on ``tiny`` is built for
#: Verilator by tests/test_accelerator_cocotb.py)
SIMULATED = [("icarus", "tiny"), ("icarus", "icebreaker"), ("verilator", "icebreaker")]


@GROUP
@pytest.mark.parametrize("simulator, config_name", SIMULATED)
def test_selftest_passes(hdl_build_root, simulator, config_name):
    result = _run(hdl_build_root, simulator, "golden", "pass", config_name)
    assert result["passed"] == 1 and result["mismatches"] == 0


@GROUP
def test_selftest_fails_on_wrong_expectation(hdl_build_root):
    result = _run(hdl_build_root, "icarus", "corrupted", "fail")
    assert result["failed"] == 1 and result["mismatches"] == 1


@GROUP
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_simulators_agree(hdl_build_root, config_name):
    """Icarus, Verilator (where it runs) and Amaranth's simulator see the same cycle count and
    register read-back signature."""
    results = {sim: _run(hdl_build_root, sim, "golden", "pass", config_name)
               for sim, name in SIMULATED if name == config_name}
    config = CONFIGS[config_name]
    results["amaranth"] = run_selftest(config, _program("golden", config), watchdog=4096)
    assert results["amaranth"]["passed"] == 1
    assert len(results) >= 2
    for sim, result in results.items():
        assert result["cycles"] == results["amaranth"]["cycles"], sim
        assert result["readback"] == results["amaranth"]["readback"], sim
