"""Board targets: the self-test top under the Amaranth simulator, and every target elaborates."""

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from rsaccel.boards.build import (_parse_report, critical_path, log_utilisation, run_from_log,
                                  summarise)
from rsaccel.boards.report import critical_path_lines, markdown_table
from rsaccel.boards.selftest import SelfTest, SelfTestProgram, selftest_program
from rsaccel.boards.targets import BOARDS, BoardError, BoardTop, board
from rsaccel.cli import main
from rsaccel.config import PRESETS, preset
from rsaccel.gen.compiler import compile_layer, expected_output_words, unpack_outputs
from rsaccel.sim.amaranth_tb import run_selftest as _run_selftest
from rsaccel.sim.layer_cases import TEST_LAYERS, layer_tensors

TINY = preset("tiny")


def run_selftest(config, program, *, stall=True):
    return _run_selftest(config, program, stall=stall, watchdog=2000, max_cycles=20000)


@pytest.mark.parametrize("name", ["relu_shift_pad_multipass", "stride2_groups"])
def test_expected_words_invert_unpack(name):
    """expected_output_words is the inverse of unpack_outputs on the masked lanes."""
    layer, zeros = TEST_LAYERS[name]
    x, w, b = layer_tensors(TINY, layer, seed=3, zeros=zeros)
    compiled = compile_layer(TINY, layer, x, w, b)
    rng = np.random.default_rng(5)
    ofmap = rng.integers(-(1 << 15), 1 << 15, size=(layer.N, layer.M, layer.E, layer.F))
    expected = expected_output_words(TINY, compiled, ofmap)
    assert len(expected) == sum(r["words"] for r in compiled.reads) + 1
    # fill the don't-care lanes with junk: unpacking must still give the ofmap back
    junk = [(v & m) | (int(rng.integers(0, 1 << 62)) & ~m) for v, m, _ in expected]
    assert np.array_equal(unpack_outputs(TINY, compiled, junk), ofmap)
    # every ofmap value is checked exactly once
    checked = sum(bin(m).count("1") for _, m, _ in expected[:-1]) // TINY.data_width
    assert checked == ofmap.size
    assert [last for _, _, last in expected].count(1) == len(compiled.reads) + 1


@pytest.mark.parametrize("stall", [False, True])
def test_selftest_passes_on_the_golden_result(stall):
    program = selftest_program(TINY)
    result = run_selftest(TINY, program, stall=stall)
    assert result and result["passed"] == 1 and result["failed"] == 0, result
    assert result["mismatches"] == 0


def _corrupt(program, index, bit):
    expected = list(program.expected)
    value, mask, last = expected[index]
    assert mask >> bit & 1, "the corrupted bit must be a checked one"
    expected[index] = (value ^ (1 << bit), mask, last)
    return SelfTestProgram(words=program.words, expected=tuple(expected), layer=program.layer)


def test_selftest_fails_on_a_wrong_expected_value():
    program = selftest_program(TINY)
    result = run_selftest(TINY, _corrupt(program, 2, 0))
    assert result["failed"] == 1 and result["passed"] == 0 and result["mismatches"] == 1


def test_selftest_fails_on_a_wrong_tlast():
    program = selftest_program(TINY)
    expected = list(program.expected)
    value, mask, last = expected[0]
    expected[0] = (value, mask, 1 - last)
    result = run_selftest(TINY, SelfTestProgram(words=program.words, expected=tuple(expected)))
    assert result["failed"] == 1 and result["mismatches"] == 1


def test_selftest_fails_on_a_corrupted_stream():
    """A broken command stream makes the core report an error or time out: never a pass."""
    program = selftest_program(TINY)
    words = list(program.words)
    words[0] ^= 0x7F << 56     # first header's opcode becomes invalid
    result = run_selftest(TINY, SelfTestProgram(words=tuple(words), expected=program.expected))
    assert result and result["failed"] == 1 and result["passed"] == 0, result


def test_selftest_validates_arguments():
    program = selftest_program(TINY)
    with pytest.raises(TypeError, match="Config must be an AccelConfig"):
        SelfTest("tiny", program)
    with pytest.raises(ValueError, match="Watchdog must be"):
        SelfTest(TINY, program, watchdog=3)
    with pytest.raises(ValueError, match="input words and expected output words"):
        SelfTest(TINY, SelfTestProgram(words=(), expected=()))


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_target_elaborates(name, tmp_path):
    """Each board's preset and top elaborate for its platform (no FPGA toolchain needed)."""
    from rsaccel.boards.build import prepare_board
    target = board(name)
    assert name in PRESETS
    plan = prepare_board(target, preset(name))
    files = plan.files
    assert "top.il" in files
    constraints = files["top.lpf" if target.family == "ecp5" else "top.pcf"]
    assert constraints
    if target.family == "ecp5":   # timing is constrained to the Fmax goal
        assert f"{target.target_hz:.1f} HZ" in constraints
    for led, number in target.leds:
        assert f"{led}_{number}__io" in files["top.il"]
    # the collision-free marking reaches Yosys and selects the global buffer's bank read
    # ports and nothing else (every other memory keeps its read-during-write behaviour)
    from fnmatch import fnmatchcase
    from rsaccel.boards.build import GLB_READ_PORTS, SCRIPT_AFTER_READ
    script = files["top.ys"]
    assert script.index(SCRIPT_AFTER_READ) > script.index("read_rtlil")
    assert script.index(SCRIPT_AFTER_READ) < script.index("synth_")
    module_pattern = GLB_READ_PORTS.split("/")[0]
    read_ports = {}
    for module in files["top.il"].split("\nmodule ")[1:]:
        module_name = module.split("\n", 1)[0].strip().lstrip("\\")
        memids = re.findall(r'cell \$memrd_v2 .*?MEMID "\\\\(\w+)"', module, flags=re.S)
        if memids:
            read_ports[module_name] = memids
    selected = {mod: ids for mod, ids in read_ports.items() if fnmatchcase(mod, module_pattern)}
    config = preset(name)
    banks = config.glb_banks + config.glb_filter_banks
    assert len(selected) == 1, selected
    assert sorted(next(iter(selected.values()))) == sorted(f"bank{b}" for b in range(banks))


def test_board_top_shows_selftest_on_leds():
    target = board("icebreaker")
    top = BoardTop(target, TINY)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    seen = {}

    async def bench(ctx):
        for _ in range(20000):
            await ctx.tick()
            leds = ctx.get(top.led_values)
            if leds & 0b100:
                seen["leds"] = leds
                return

    sim.add_testbench(bench)
    sim.run()
    assert seen["leds"] & 0b111 == 0b101     # done and passed, not failed


def test_unknown_board():
    with pytest.raises(BoardError, match="Unknown board 'de10'; known boards: icebreaker"):
        board("de10")
    assert main(["build", "--board", "de10"]) == 2


def test_build_cli_rejects_bad_config(capsys):
    assert main(["build", "--board", "icebreaker", "--set", "rows=0"]) == 2
    err = capsys.readouterr().err
    assert "'rows' must be an integer in [1, 64], not 0" in err


def test_report_parsing_and_table():
    target = board("ulx3s-85f")
    report = {"utilization": {"TRELLIS_COMB": {"used": 1000, "available": 83640},
                              "TRELLIS_FF": {"used": 500, "available": 83640},
                              "MULT18X18D": {"used": 64, "available": 156},
                              "DP16KD": {"used": 10, "available": 208}},
              "fmax": {"clk": {"achieved": 101.5, "constraint": 100.0}}}
    resources, fmax = _parse_report(target, report)
    assert resources["dsps"] == {"used": 64, "available": 156} and fmax == 101.5
    result = summarise(target, PRESETS["ulx3s-85f"], [
        {"seed": 1, "resources": resources, "fmax_mhz": 101.5, "wall_seconds": 1},
        {"seed": 2, "resources": resources, "fmax_mhz": 90.0, "wall_seconds": 1},
        {"seed": 3, "resources": resources, "fmax_mhz": 95.0, "wall_seconds": 1}])
    assert result["fmax_mhz"] == {"min": 90.0, "median": 95.0, "max": 101.5}
    table = markdown_table([result])
    assert "| ulx3s-85f | 8 x 8 | 64 | 1000 / 83640 (1 %)" in table
    assert "90.0 / 95.0 / 101.5 | 3 | 100 | no |" in table


def test_run_from_a_log_that_missed_timing():
    log = """Info: Device utilisation:
Info: \t          TRELLIS_FF:   19850/  83640    23%
Info: \t        TRELLIS_COMB:   65782/  83640    78%
Info: \t          MULT18X18D:      55/    156    35%
Info: Max frequency for clock '$glbnet$cd_sync.clk': 17.30 MHz (FAIL at 100.00 MHz)
ERROR: Max frequency for clock '$glbnet$cd_sync.clk': 22.44 MHz (FAIL at 100.00 MHz)
"""
    run = run_from_log(board("ulx3s-85f"), log, seed=1)
    assert run["fmax_mhz"] == 22.44 and run["timing_met"] is False
    assert run["resources"]["luts"] == {"used": 65782, "available": 83640}
    assert run["resources"]["ffs"]["used"] == 19850 and run["bitstream"] is False


def test_utilisation_from_a_failed_placement_log():
    log = """Info: Device utilisation:
Info: \t         ICESTORM_LC:   16059/   5280   304%
Info: \t        ICESTORM_RAM:      20/     30    66%
Info: \t        ICESTORM_DSP:       4/      8    50%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""
    resources = log_utilisation(board("icebreaker"), log)
    assert resources["luts"] == {"used": 16059, "available": 5280}
    assert resources["brams"] == {"used": 20, "available": 30}
    assert resources["dsps"] == {"used": 4, "available": 8}


def test_critical_path_summary():
    # a cut-down nextpnr --report: the clock's worst path, and a path to a pin (skipped)
    step = {"delay": 0.5, "type": "clk-to-q", "from": {"cell": "a"}, "to": {"cell": "a"}}
    report = {"critical_paths": [
        {"from": "posedge clk", "to": "posedge clk", "path": [
            step,
            {"delay": 1.25, "type": "routing", "from": {"cell": "a"}, "to": {"cell": "m"},
             "sources": ["/some/checkout/hw/pe.py:111", "/share/lattice/cells_map.v:10"]},
            {"delay": 3.75, "type": "logic", "from": {"cell": "m"}, "to": {"cell": "m"}},
            {"delay": 2.0, "type": "routing", "from": {"cell": "m"}, "to": {"cell": "b"},
             "sources": ["C:\\work\\hw\\pe_array.py:217", "/x/hw/pe.py:111"]},
            {"delay": 0.5, "type": "setup", "from": {"cell": "b"}, "to": {"cell": "b"}}]},
        {"from": "posedge clk", "to": "<async>", "path": [
            {"delay": 30.0, "type": "routing", "from": {"cell": "c"}, "to": {"cell": "pin"},
             "sources": ["/y/boards/targets.py:1"]}]}]}
    assert critical_path(report) == {
        "delay_ns": 8.0, "logic_ns": 4.75, "routing_ns": 3.25, "from": "a", "to": "b",
        "sources": ["hw/pe.py:111", "hw/pe_array.py:217"]}
    assert critical_path({"critical_paths": []}) is None
    lines = critical_path_lines({"runs": [{"seed": 3, "critical_path": critical_path(report)},
                                          {"seed": 4, "critical_path": None}]})
    assert lines.splitlines()[-1] == ("- seed 3: 8.0 ns (4.75 ns logic, 3.25 ns routing) from "
                                      "`a` to `b`, through `hw/pe.py:111`, `hw/pe_array.py:217`")
    assert "seed 4" not in lines and critical_path_lines({"runs": [{"seed": 1}]}) == ""
