"""Elaborate a configuration to Verilog plus a JSON manifest.

The output is deterministic: the same configuration gives byte-identical files on any machine and
path (no source locations, absolute paths or timestamps are emitted).
"""

import json
from pathlib import Path

from amaranth import __version__ as amaranth_version
from amaranth.back import verilog
from amaranth.hdl import Fragment, Value
from amaranth.lib import data, wiring

from ..config import AccelConfig
from ..hw.core import STREAM_FORMAT_VERSION
from ..hw.pe import PECommand, PECounters, PEError, PEOp, ProcessingElement

__all__ = ["build_top", "convert", "manifest", "generate", "DEFAULT_TOP_NAME"]

#: Name of the top-level Verilog module unless ``name`` is given.
DEFAULT_TOP_NAME = "rsaccel"
#: Version of the manifest format (bumped on incompatible changes).
MANIFEST_VERSION = 1


def _blocks():
    from ..hw.accelerator import Accelerator
    from ..hw.pe_array import PEArray
    return {"accelerator": Accelerator, "pe": ProcessingElement, "array": PEArray}


#: Blocks that can be generated as a top level (``accelerator`` is the whole design).
BLOCKS = ("accelerator", "pe", "array")
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
            or name in _VERILOG_KEYWORDS):
        raise ValueError(f"Top module name must be an ASCII Verilog identifier that is not a "
                         f"keyword, not {name!r}")


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
        "top": name,
        "block": block,
        "config": config.as_dict(),
        "derived": {
            "num_pes": config.num_pes,
            "glb_bytes": config.glb_bytes,
            "rlc_pairs_per_word": config.rlc_pairs_per_word,
            "max_ifmap_row_width": config.max_ifmap_row_width,
        },
        "ports": ports(top),
        "layouts": {
            "cmd": _layout_fields(PECommand(config)),
            "pe_counters": _layout_fields(PECounters(config)),
        },
        "stream_format_version": STREAM_FORMAT_VERSION,
        "registers": top.register_map if hasattr(top, "register_map") else [],
        "enums": {
            "op": {member.name: member.value for member in PEOp},
            "error": {member.name: member.value for member in PEError},
        },
    }


def generate(config, out_dir, *, name=DEFAULT_TOP_NAME, block=DEFAULT_BLOCK):
    """Write ``<name>.v`` and ``manifest.json`` of ``block`` for ``config`` into ``out_dir``.

    Returns the list of written paths.
    """
    _check_name(name)
    top = build_top(config, block)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = out_dir / f"{name}.v"
    manifest_path = out_dir / "manifest.json"
    verilog_path.write_text(convert(config, name=name, top=top))
    manifest_path.write_text(json.dumps(manifest(config, name=name, top=top, block=block), indent=2) + "\n")
    return [verilog_path, manifest_path]
