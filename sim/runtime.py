"""Host runtime: run a layer on the generated accelerator in simulation and decode the result.

``run_layer`` maps and compiles the layer (:mod:`rsaccel.gen.compiler`), streams it through the
accelerator's Verilog under cocotb (Verilator or Icarus) or under Verilator with a C++
testbench (``verilator-cpp``; one build per configuration and backend, reused), reads the performance counters over AXI4-Lite and returns the ofmap with everything measured.
"""

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..gen.compiler import (_check_fits, check_rlc, compile_layer, plan_mapping,
                            unpack_outputs)

__all__ = ["LayerResult", "AcceleratorError", "check_tensors", "run_layer", "pick_mapping",
           "MAPPERS", "CORE_ERRORS",
           "RUN_SIMULATORS"]

#: ``run_layer`` backends: cocotb under Verilator or Icarus, or Verilator with the C++
#: testbench of :mod:`rsaccel.sim.verilator_native` (same job, far faster on large arrays).
RUN_SIMULATORS = ("verilator", "icarus", "verilator-cpp")

#: Core error codes (rsaccel.hw.core.CoreError) by value.
CORE_ERRORS = {0: "NONE", 1: "BAD_OPCODE", 2: "PE_ERROR", 3: "NO_DESTINATION", 4: "TIMEOUT",
               5: "BAD_ADDRESS", 6: "BAD_RLC"}
#: RLC decoder error codes (rsaccel.hw.rlc_decoder.RLCError) by value.
RLC_ERRORS = {1: "SPARE_BITS", 2: "OVERSHOOT", 3: "PADDING", 4: "EARLY_LAST", 5: "MISSING_LAST",
              6: "WORDS_AFTER_LAST", 7: "LEVEL_RANGE"}


class AcceleratorError(RuntimeError):
    """The accelerator reported an error (or produced no result) while running a layer."""


@dataclass
class LayerResult:
    ofmap: np.ndarray
    #: the performance counters read after the layer (empty without ``perf_counters``)
    counters: dict
    mapping: dict
    passes: int
    stream_words_in: int
    wall_seconds: float
    registers: dict = field(default_factory=dict)
    #: what :mod:`rsaccel.sim.perf_model` predicted for this run (``counts``, ``cycles``, ...)
    model: dict = field(default_factory=dict)


def check_tensors(config, layer, ifmap, weights, bias):
    """Validate shapes, dtypes and value ranges; raise ValueError naming the problem."""
    def as_int(name, array, shape, width):
        array = np.asarray(array)
        if array.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, not {array.dtype}")
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, not {array.shape}")
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        if array.size and (array.min() < lo or array.max() > hi):
            bad = np.argwhere((array < lo) | (array > hi))[0]
            raise ValueError(f"{name} value {array[tuple(bad)]} at index {tuple(int(i) for i in bad)} "
                             f"is outside the signed {width}-bit range [{lo}, {hi}]")
        return array.astype(np.int64)

    ifmap = as_int("ifmap", ifmap, (layer.N, layer.C, layer.H, layer.W), config.data_width)
    weights = as_int("weights", weights,
                     (layer.M, layer.C // layer.groups, layer.R, layer.S), config.data_width)
    bias = as_int("bias", bias, (layer.M,), config.acc_width)
    return ifmap, weights, bias


#: How ``run_layer`` picks a mapping: the mapper's objectives, or the compiler's simple rule.
MAPPERS = ("energy", "cycles", "simple")


def pick_mapping(config, layer, mapper="energy", ifmap=None, refine=1):
    """The mapping ``run_layer`` uses: :func:`~rsaccel.gen.mapper.choose_mapping` for
    ``"energy"`` or ``"cycles"`` (``refine`` as there), :func:`~rsaccel.gen.compiler.plan_mapping`
    for ``"simple"``."""
    if mapper == "simple":
        return plan_mapping(config, layer)
    if mapper not in MAPPERS:
        raise ValueError(f"Mapper must be one of {', '.join(MAPPERS)}, not {mapper!r}")
    from ..gen.mapper import choose_mapping
    return choose_mapping(config, layer, objective=mapper, ifmap=ifmap, refine=refine)[0]


def build_registers(build):
    """The register map of the Verilog ``build`` simulates, from its manifest."""
    return json.loads((build.build_dir / "manifest.json").read_text())["registers"]


def run_layer(config, layer, ifmap, weights, bias, *, simulator="verilator", build_root=None,
              seed=0, stall=0.0, timeout=1 << 20, max_cycles=50_000_000, mapper="energy",
              mapping=None, rlc_in=False, rlc_out=False, refine=1):
    """Run ``layer`` on the accelerator of ``config`` under ``simulator`` (:data:`RUN_SIMULATORS`).

    The mapping is ``mapping`` if given, else the one ``mapper`` picks (:func:`pick_mapping`,
    with ``refine``).
    ``rlc_in`` / ``rlc_out`` send the ifmap and receive the ofmap run-length coded (filters
    and biases always go plain). The result carries the measured counters and the model's
    prediction for the same run.

    Raises :class:`~rsaccel.gen.compiler.LayerError` before simulating if the layer cannot run,
    ValueError for bad tensors, :class:`AcceleratorError` if the hardware reports an error.
    """
    from .cocotb_tb.runner import build_block
    from .verilator_native import NATIVE_SIMULATOR, build_native

    from .perf_model import model_layer

    if simulator not in RUN_SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(RUN_SIMULATORS)}, "
                         f"not {simulator!r}")
    layer.validate()
    check_rlc(config, rlc_in, rlc_out)
    _check_fits(config, layer)     # a layer the array cannot hold is refused first
    ifmap, weights, bias = check_tensors(config, layer, ifmap, weights, bias)
    if mapping is None:
        mapping = pick_mapping(config, layer, mapper, ifmap, refine)
    else:
        from ..gen.mapper import check_mapping
        check_mapping(config, layer, mapping)
    ofmap_expected = None
    if rlc_out:
        from .golden import conv2d
        ofmap_expected = conv2d(ifmap, weights, bias, stride=layer.stride, pad=layer.pad,
                                groups=layer.groups, out_shift=layer.out_shift, relu=layer.relu,
                                data_width=config.data_width, acc_width=config.acc_width)
    model = model_layer(config, layer, mapping, ifmap=ifmap, rlc_in=rlc_in, rlc_out=rlc_out,
                        ofmap=ofmap_expected)
    compiled = compile_layer(config, layer, ifmap, weights, bias, mapping, rlc_in=rlc_in,
                             rlc_out=rlc_out)
    # absolute: the simulator runs in its own working directory
    build_root = Path(build_root or Path.cwd() / "build" / "sim").resolve()
    job = {"expect_frames": compiled.frames + 1, "stall": stall, "seed": seed,
           "timeout": timeout, "max_cycles": max_cycles}
    if simulator == NATIVE_SIMULATOR:
        build = build_native(config, build_root)
        registers = build_registers(build)
        start = time.time()
        result = build.run(compiled.words, registers=registers, **job)
        wall = time.time() - start
    else:
        build = build_block(config, simulator, build_root, block="accelerator")
        registers = build_registers(build)
        with tempfile.TemporaryDirectory(dir=build.build_dir) as tmp:
            job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
            job_path.write_text(json.dumps({"words": compiled.words, "registers": registers,
                                            **job}))
            start = time.time()
            build.run("rsaccel.sim.cocotb_tb.accel_tb", test_dir=tmp,
                      extra_env={"RSACCEL_JOB": str(job_path),
                                 "RSACCEL_RESULT": str(result_path)})
            wall = time.time() - start
            result = json.loads(result_path.read_text())
    regs = result["registers"]
    error = (regs.get("status", 0) >> 4) & 0xF
    if error:
        detail = f"PE error code {(regs['status'] >> 8) & 7}"
        if CORE_ERRORS.get(error) == "BAD_RLC":
            code = (regs["status"] >> 12) & 7
            detail = f"RLC error {RLC_ERRORS.get(code, code)}"
        raise AcceleratorError(f"The accelerator reported {CORE_ERRORS.get(error, error)} "
                               f"({detail}) while running the layer")
    if result.get("stopped"):
        raise AcceleratorError(f"The accelerator produced no complete result: "
                               f"{result['stopped']}")
    ofmap = unpack_outputs(config, compiled, result["words"])
    from ..hw.core import CORE_COUNTER_NAMES
    counters = {name: regs[name] for name in CORE_COUNTER_NAMES} if config.perf_counters else {}
    return LayerResult(ofmap=ofmap, counters=counters, mapping=mapping.as_dict(),
                       passes=compiled.passes, stream_words_in=len(compiled.words),
                       wall_seconds=wall, registers=regs,
                       model={"counts": model.counts, "cycles": model.cycles,
                              "cycle_model": model.cycle_model,
                              "energy": model.energy, "total_energy": model.total_energy})
