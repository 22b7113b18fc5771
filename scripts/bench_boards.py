#!/usr/bin/env python3
"""Board benchmark: the largest PE array that fits each board, its utilisation and Fmax.

For each board, tries the array sizes given (largest first) with the board's preset and
``--set`` overrides, builds with YoWASP Yosys and nextpnr, and stops at the first size that
places and routes; that size is then rebuilt with the other placement seeds for the Fmax
spread. Sizes that do not fit are recorded with the utilisation nextpnr logged. Results go to
``docs/results/boards.json`` and ``docs/results/boards.md`` (not in CI: a large ECP5 build takes
tens of minutes).

    python scripts/bench_boards.py --board ulx3s-85f --sizes 8x8 7x8 6x8 --seeds 3
    python scripts/bench_boards.py --board icebreaker --sizes 2x2 1x2 1x1
"""

import argparse
import json
import sys
import time
from pathlib import Path

from rsaccel.boards.build import BuildError, build_board, summarise
from rsaccel.boards.report import markdown_table
from rsaccel.boards.targets import BOARDS, board
from rsaccel.config import parse_value, preset
from rsaccel.gen.compiler import LayerError
from rsaccel.sim.provenance import source_version

DEFAULT_SIZES = {"ulx3s-85f": ["8x8", "7x8", "6x8", "4x8"], "icebreaker": ["2x2", "1x2", "1x1"]}


def _size(text):
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS, not {text!r}") from None
    return rows, cols


def write_results(results, out):
    """Merge ``results`` into ``out``.json (boards measured by other runs are kept) and write
    ``out``.md from the merged results."""
    # merge with the boards other runs measured (read now: another sweep may have finished)
    previous = (json.loads(out.with_suffix(".json").read_text())
                if out.with_suffix(".json").exists() else {"boards": {}})
    results = {**previous.get("boards", {}), **results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"boards": results}, indent=2) + "\n")
    lines = ["# Board builds", "",
             "Built with `python scripts/bench_boards.py` (YoWASP Yosys and nextpnr from PyPI; the "
             "self-test board top of `rsaccel.boards`). Fmax is nextpnr's, against the target "
             "clock constraint; min / median / max over the placement seeds. The board top is "
             "clocked from the board oscillator (ULX3S 25 MHz, iCEBreaker 12 MHz).", "",
             "## Largest array that fits", ""]
    fitted = [r["largest_fitting"] for r in results.values() if r["largest_fitting"]]
    lines.append(markdown_table(fitted) if fitted else "(none)\n")
    # what a table cannot say (e.g. that a later version of the hardware has not been built)
    notes = [f"- **{name}**: {r['note']}" for name, r in results.items() if r.get("note")]
    if notes:
        lines += notes + [""]
    lines += ["## Every attempt", "",
              "| board | array | fits | LUTs | DSPs | block RAMs | Fmax MHz (median) | wall s "
              "| source |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for a in r["attempts"]:
            res = a["resources"]

            def used(key):
                return f"{res[key]['used']} / {res[key]['available']}" if key in res else "-"
            fmax = f"{a['fmax_mhz']['median']:.1f}" if a.get("fmax_mhz") else "-"
            fits = a.get("outcome") or ("yes" if a["fits"] else "no")
            lines.append(f"| {name} | {a['rows']} x {a['cols']} | {fits} "
                         f"| {used('luts')} | {used('dsps')} | {used('brams')} | {fmax} "
                         f"| {a['wall_seconds']} | {a.get('source', r.get('source', ''))} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", action="append", choices=sorted(BOARDS),
                        help="board to sweep (repeatable; default: all)")
    parser.add_argument("--sizes", nargs="+", type=_size, metavar="ROWSxCOLS",
                        help="array sizes to try, largest first (default: per board)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the board preset (repeatable)")
    parser.add_argument("--seeds", type=int, default=3, help="placement seeds (default: 3)")
    parser.add_argument("--build-dir", default="build/boards")
    parser.add_argument("--out", default="docs/results/boards",
                        help="output path without extension (default: docs/results/boards)")
    parser.add_argument("--merge", metavar="JSON",
                        help="only merge the boards of another run's JSON into --out and "
                             "rewrite its Markdown")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if args.merge:
        write_results(json.loads(Path(args.merge).read_text())["boards"], out)
        return 0
    results = {}
    source = source_version()      # now: the tree may change while a long build runs
    for name in args.board or sorted(BOARDS):
        target = board(name)
        base = preset(name)
        changes = {}
        for item in args.set:
            field, value = item.split("=", 1)
            changes[field] = parse_value(field, value)
        attempts = []
        fitted = None
        for rows, cols in args.sizes or [_size(s) for s in DEFAULT_SIZES[name]]:
            noc = max(base.noc_id_width, max(rows, cols).bit_length())
            config = base.replace(**{**changes, "rows": rows, "cols": cols, "noc_id_width": noc})
            build_dir = Path(args.build_dir) / name / f"{rows}x{cols}"
            start = time.time()
            try:
                result = build_board(target, config, build_dir, seeds=[1])
            except (BuildError, LayerError) as exc:
                print(f"{name} {rows}x{cols}: {exc}", file=sys.stderr)
                attempts.append({"rows": rows, "cols": cols, "fits": False,
                                 "resources": exc.resources, "error": str(exc).split(";")[0],
                                 "wall_seconds": round(time.time() - start, 1)})
                continue
            if args.seeds > 1:
                more = build_board(target, config, build_dir, seeds=range(2, args.seeds + 1),
                                   keep_bitstream=False)
                result["runs"] += more["runs"]
                result = summarise(target, config, result["runs"])
            attempts.append({"rows": rows, "cols": cols, "fits": True,
                             "resources": result["resources"], "fmax_mhz": result["fmax_mhz"],
                             "wall_seconds": round(time.time() - start, 1)})
            fitted = result
            break
        for attempt in attempts:
            attempt["source"] = source
        results[name] = {"largest_fitting": fitted, "attempts": attempts,
                         "overrides": args.set, "source": source}
        print(markdown_table([fitted]) if fitted else f"{name}: no size fitted", end="")

    write_results(results, out)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
