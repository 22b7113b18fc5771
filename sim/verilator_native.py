"""The accelerator under Verilator with a C++ testbench: no Python in the clock loop.

cocotb's Verilator builds make every signal public (``--public-flat-rw``) and call Python on
every clock edge, which on the ``eyeriss`` array means a build of tens of minutes and a few
hundred cycles a second. :func:`build_native` instead compiles the generated Verilog with
``verilator_harness.cpp`` (package data) into one executable per configuration, and
:meth:`NativeBuild.run` runs a job on it: the same job and result as
:mod:`rsaccel.sim.cocotb_tb.accel_tb` (reset, timeout, start, clear counters, one input frame,
wait for the output frames, read every read-only register), with the same kind of random
stalls on both AXI4-Streams from a seed (the random sequence differs from cocotb's).
"""

import hashlib
import os
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path

from .cocotb_tb.runner import config_key, ensure_verilator_on_path, waiver_file

__all__ = ["NativeBuild", "build_native", "harness_source"]

#: the ``--sim`` name of this backend
NATIVE_SIMULATOR = "verilator-cpp"


def harness_source():
    """Path of the C++ testbench."""
    return Path(str(files("rsaccel.sim").joinpath("verilator_harness.cpp")))


class NativeBuild:
    """A compiled Verilator model of the accelerator with the C++ testbench."""

    simulator = NATIVE_SIMULATOR

    def __init__(self, executable, build_dir, config):
        self.executable = Path(executable)
        self.build_dir = Path(build_dir)
        self.config = config

    def run(self, words, *, expect_frames, registers, stall=0.0, seed=0, timeout=1 << 20,
            max_cycles=10_000_000):
        """Run one job; return the result as :mod:`~rsaccel.sim.cocotb_tb.accel_tb` writes it.

        ``registers`` is the manifest's register map. The result has ``words`` (the output
        stream's words), ``frames``, ``registers`` (every read-only register by name),
        ``irq``, ``harness_cycles`` (clock cycles the testbench ran, reset included) and
        ``stopped`` (``None``, ``"error"`` or a timeout message).
        """
        if not 0.0 <= float(stall) < 1.0:
            raise ValueError(f"stall must be in [0, 1), not {stall!r}")
        offsets = {r["name"]: r["offset"] for r in registers}
        with tempfile.TemporaryDirectory(dir=self.build_dir) as tmp:
            job = Path(tmp)
            (job / "params.txt").write_text(
                f"stall {float(stall)!r}\nseed {int(seed)}\ntimeout {int(timeout)}\n"
                f"max_cycles {int(max_cycles)}\nexpect_frames {int(expect_frames)}\n")
            (job / "writable.txt").write_text("".join(
                f"{name} {offsets[name]}\n"
                for name in ("control", "timeout", "clear_counters", "status")))
            (job / "registers.txt").write_text("".join(
                f"{r['name']} {r['offset']} {r['width']}\n" for r in registers
                if r["access"] == "ro"))
            (job / "words.bin").write_bytes(
                b"".join(int(w).to_bytes(8, "little") for w in words))
            done = subprocess.run([str(self.executable), str(job)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"The Verilator testbench failed (exit {done.returncode}): "
                                   f"{done.stderr.strip()[-2000:]}")
            return _parse_result((job / "result.txt").read_text())


def _parse_result(text):
    result = {"registers": {}, "words": [], "stopped": None}
    lines = iter(text.splitlines())
    for line in lines:
        if line == "words":
            result["words"] = [int(word, 16) for word in lines]
            break
        key, _, value = line.partition(" ")
        if key == "reg":
            name, _, number = value.partition(" ")
            result["registers"][name] = int(number)
        elif key == "stopped":
            result["stopped"] = value
        elif key in ("frames", "irq"):
            result[key] = int(value)
        elif key == "cycles":
            result["harness_cycles"] = int(value)
    return result


#: builds already made or checked in this process, by directory
_BUILT = {}


def build_native(config, build_root, *, jobs=None, threads=1):
    """Generate the accelerator's Verilog for ``config`` and compile it with the testbench.

    One build per configuration (and testbench source) under ``build_root``, reused while the
    Verilog and the testbench are unchanged. ``jobs`` C++ compiler processes (default: the
    CPU count); ``threads`` > 1 builds a multithreaded model (Verilator ``--threads``).
    """
    from ..gen.verilog import generate

    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, not {threads!r}")
    harness = harness_source()
    key = config_key(config, f"accelerator-native-t{int(threads)}")
    build_dir = Path(build_root).resolve() / f"accelerator-{NATIVE_SIMULATOR}-{key}"
    if build_dir in _BUILT:    # checked earlier in this process
        return _BUILT[build_dir]
    build_dir.mkdir(parents=True, exist_ok=True)
    toplevel = "rsaccel_accelerator"
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in generate(config, tmp, name=toplevel, block="accelerator"):
            if fresh.suffix != ".v":   # manifest, header, report: beside the build
                (build_dir / fresh.name).write_text(fresh.read_text())
            else:
                text = fresh.read_text()
    verilog_path = build_dir / f"{toplevel}.v"
    stamp = hashlib.sha256((text + harness.read_text()).encode()).hexdigest()
    executable = build_dir / "obj_dir" / "harness"
    stamp_path = build_dir / "build.stamp"
    if executable.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        _BUILT[build_dir] = NativeBuild(executable, build_dir, config)
        return _BUILT[build_dir]
    verilog_path.write_text(text)
    ensure_verilator_on_path()
    jobs = int(jobs or os.cpu_count() or 1)
    command = [
        "verilator", "--cc", "--exe", "--build", "-j", str(jobs),
        "--top-module", toplevel, "--prefix", "Vtop", "-O3", "--x-assign", "fast",
        "--x-initial", "fast", "--Mdir", str(build_dir / "obj_dir"), "-o", "harness",
        "-CFLAGS", "-O2", str(waiver_file()), str(verilog_path), str(harness),
    ]
    if int(threads) > 1:
        command[1:1] = ["--threads", str(int(threads))]
    env = dict(os.environ)
    # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (see runner.build_verilog).
    env["MAKEFLAGS"] = " ".join(part for part in (env.get("MAKEFLAGS"),
                                                  "CFG_CXXFLAGS_PCH_I=-include") if part)
    log_path = build_dir / "build.log"
    with open(log_path, "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                              cwd=build_dir)
    if done.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"Verilator build failed (exit {done.returncode}); "
                           f"{log_path}:\n{tail}")
    stamp_path.write_text(stamp)
    _BUILT[build_dir] = NativeBuild(executable, build_dir, config)
    return _BUILT[build_dir]
