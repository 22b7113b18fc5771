#!/usr/bin/env python3
"""Mapper and model benchmark: AlexNet CONV1-5 against Eyeriss, and the model against the RTL.

1. AlexNet CONV1-5 at batch 4 on the ``eyeriss`` preset, with Eyeriss's measured ifmap
   sparsity: the mapping the mapper chooses (energy objective) and its active PEs beside the
   ones Eyeriss used; the model's cycles and stream (DRAM) words per MAC beside Eyeriss's
   published figures; the time each search takes.
2. The model against the RTL: every test layer of ``rsaccel.sim.layer_cases`` on the ``tiny``
   preset under Amaranth's simulator (no stalls), with the simple, energy and cycles mappings:
   whether all 20 access counters match exactly, and the error of both cycle models (the
   exact one, which steps every distinct RUN pass, and the bottleneck estimate the mapper
   ranks with).

Writes docs/results/mapper_alexnet.{json,md} and docs/results/model_vs_rtl.{json,md}.
Usage: python scripts/bench_mapper.py [--skip-rtl]
"""

import argparse
import json
import platform
import time
from pathlib import Path

from rsaccel import preset
from rsaccel.gen.compiler import compile_layer, plan_mapping
from rsaccel.gen.mapper import check_mapping, choose_mapping
from rsaccel.gen.networks import network
from rsaccel.sim.perf_model import COUNT_NAMES, model_layer
from rsaccel.sim.provenance import source_version

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"

# reference section 5 (batch 4, 200 MHz): processing latency, active PEs, ifmap zeros;
# section 3: the mapping Eyeriss used
EYERISS = {
    "conv1": dict(ms=16.5, pes=154, zeros=0.0, mapping="11x7 sets, t=2"),
    "conv2": dict(ms=39.2, pes=135, zeros=0.387, mapping="5x27 split 5x14 + 5x13"),
    "conv3": dict(ms=21.8, pes=156, zeros=0.725, mapping="3x13, n=4 p=16 q=4 r=1 t=4"),
    "conv4": dict(ms=16.0, pes=156, zeros=0.793, mapping="3x13, r=2 t=2"),
    "conv5": dict(ms=10.0, pes=156, zeros=0.776, mapping="3x13, r=2 t=2"),
}
EYERISS_DRAM_PER_MAC = 0.0029     # 16-bit words per MAC, with RLC, CONV1-5 batch 4


def alexnet(refine):
    config = preset("eyeriss")
    rows = []
    for nl in network("alexnet", batch=4):
        if nl.name not in EYERISS:
            continue
        ref = EYERISS[nl.name]
        start = time.perf_counter()
        mapping, estimate, candidates = choose_mapping(config, nl.layer,
                                                       zero_fraction=ref["zeros"])
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        model = model_layer(config, nl.layer, mapping, zero_fraction=ref["zeros"])
        exact_seconds = time.perf_counter() - start
        simple = model_layer(config, nl.layer, plan_mapping(config, nl.layer),
                             zero_fraction=ref["zeros"])
        fastest, fast_model, _ = choose_mapping(config, nl.layer, objective="cycles",
                                                zero_fraction=ref["zeros"],
                                                cycle_model="exact", refine=refine)
        dram = (model.counts["words_in"] + model.counts["words_out"]) * config.lanes
        rows.append({
            "layer": nl.name, "macs": nl.layer.macs, "mapping": mapping.as_dict(),
            "active_pes": mapping.active_pes, "candidates": candidates,
            "search_seconds": round(seconds, 3), "cycles": model.cycles,
            "estimated_cycles": estimate.cycles, "exact_model_seconds": round(exact_seconds, 1),
            "energy_per_mac": model.total_energy / nl.layer.macs,
            "dram_words_per_mac": dram / nl.layer.macs,
            "simple_rule": {"mapping": simple.mapping.as_dict(), "cycles": simple.cycles,
                            "energy_per_mac": simple.total_energy / nl.layer.macs},
            "cycles_objective": {"mapping": fastest.as_dict(), "cycles": fast_model.cycles,
                                 "energy_per_mac": fast_model.total_energy / nl.layer.macs},
            "eyeriss": {"mapping": ref["mapping"], "active_pes": ref["pes"],
                        "cycles": int(ref["ms"] * 1e-3 * 200e6), "zeros": ref["zeros"]},
        })
        print(f"{nl.name}: {mapping} in {seconds:.2f} s ({candidates} mappings), "
              f"{model.cycles:,} cycles (Eyeriss {rows[-1]['eyeriss']['cycles']:,}), "
              f"{rows[-1]['dram_words_per_mac']:.4f} DRAM words/MAC")
    return rows


def model_vs_rtl():
    from rsaccel.sim.amaranth_tb import run_core
    from rsaccel.sim.layer_cases import (CHANNEL_SET_CASES, SIDE_BY_SIDE_CASES, TEST_LAYERS,
                                         layer_tensors)
    config = preset("tiny")
    runs = []
    for name, (layer, zeros) in sorted(TEST_LAYERS.items()):
        x, w, b = layer_tensors(config, layer, seed=len(name), zeros=zeros)
        seen = set()
        for rule in ("simple", "energy", "cycles"):
            mapping = (plan_mapping(config, layer) if rule == "simple" else
                       choose_mapping(config, layer, objective=rule, ifmap=x)[0])
            if mapping not in seen:
                seen.add(mapping)
                runs.append((name, rule, config, layer, zeros, mapping))
    # channel sets (r > 1), some on a 4-row array
    for name, (cfg, layer, mapping) in sorted(CHANNEL_SET_CASES.items()):
        runs.append((name, f"r={mapping.r}, rows={cfg.rows}", cfg, layer, 0.3, mapping))
    # filter sets side by side (h > 1)
    for name, (cfg, layer, mapping) in sorted(SIDE_BY_SIDE_CASES.items()):
        runs.append((name, f"h={mapping.h}, rows={cfg.rows}", cfg, layer, 0.3, mapping))
    rows = []
    for name, rule, config, layer, zeros, mapping in runs:
        x, w, b = layer_tensors(config, layer, seed=len(name), zeros=zeros)
        check_mapping(config, layer, mapping)
        compiled = compile_layer(config, layer, x, w, b, mapping)
        expect = sum(r["words"] for r in compiled.reads) + 1
        _, state = run_core(config, compiled.words, expect, max_cycles=400000)
        counters = state["counters"]
        model = model_layer(config, layer, mapping, ifmap=x)
        estimate = model_layer(config, layer, mapping, ifmap=x, cycle_model="estimate")
        wrong = [k for k in COUNT_NAMES if model.counts[k] != counters[k]]
        error = (model.cycles - counters["cycles"]) / counters["cycles"]
        est_error = (estimate.cycles - counters["cycles"]) / counters["cycles"]
        rows.append({"layer": name, "rule": rule, "mapping": mapping.as_dict(),
                     "counts_exact": not wrong, "wrong_counts": wrong,
                     "rtl_cycles": counters["cycles"], "model_cycles": model.cycles,
                     "cycle_error": error, "estimated_cycles": estimate.cycles,
                     "estimate_error": est_error})
        print(f"{name} ({rule}): counts {'exact' if not wrong else wrong}, cycles RTL "
              f"{counters['cycles']} model {model.cycles} ({error:+.1%}), estimate "
              f"{estimate.cycles} ({est_error:+.1%})")
    return rows


def write_alexnet(rows, refine):
    total_cycles = sum(r["cycles"] for r in rows)
    total_fast = sum(r["cycles_objective"]["cycles"] for r in rows)
    total_eyeriss = sum(r["eyeriss"]["cycles"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    dram = sum(r["dram_words_per_mac"] * r["macs"] for r in rows) / macs
    meta = {"commit": source_version(), "date": time.strftime("%Y-%m-%d"),
            "python": platform.python_version(), "preset": "eyeriss", "batch": 4,
            "objective": "energy", "cycles_objective_refine": refine}
    (RESULTS / "mapper_alexnet.json").write_text(json.dumps(
        {"meta": meta, "layers": rows, "total_cycles": total_cycles,
         "eyeriss_total_cycles": total_eyeriss, "cycles_objective_total_cycles": total_fast,
         "dram_words_per_mac": dram,
         "eyeriss_dram_words_per_mac": EYERISS_DRAM_PER_MAC}, indent=2) + "\n")
    lines = [
        "# Mapper on AlexNet CONV1-5 (`eyeriss` preset, batch 4) against Eyeriss",
        "",
        "| layer | mapping chosen (e t p q n r h) | active PEs (Eyeriss) | Eyeriss mapping | "
        "model cycles (estimate) | Eyeriss cycles | DRAM words / MAC | energy / MAC | "
        "search s | cycles objective: mapping, cycles, energy / MAC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["mapping"]
        lines.append(
            f"| {r['layer']} | {m['e']} {m['t']} {m['p']} {m['q']} {m['n']} "
            f"{m.get('r', 1)} {m.get('h', 1)} | "
            f"{r['active_pes']} ({r['eyeriss']['active_pes']}) | {r['eyeriss']['mapping']} | "
            f"{r['cycles']:,} ({r['estimated_cycles']:,}) | {r['eyeriss']['cycles']:,} | "
            f"{r['dram_words_per_mac']:.4f} | "
            f"{r['energy_per_mac']:.2f} | {r['search_seconds']:.2f} | "
            f"{' '.join(str(r['cycles_objective']['mapping'].get(k, 1)) for k in 'etpqnrh')}, "
            f"{r['cycles_objective']['cycles']:,}, "
            f"{r['cycles_objective']['energy_per_mac']:.2f} |")
    lines += [
        f"| total | | | | {total_cycles:,} | {total_eyeriss:,} | {dram:.4f} "
        f"(Eyeriss {EYERISS_DRAM_PER_MAC}) | | | {total_fast:,} |",
        "",
        f"Made with `python scripts/bench_mapper.py` at commit {meta['commit']} on "
        f"{meta['date']}. Ifmap zero fractions are Eyeriss's measured ones; energy is in units "
        "of one MAC (MAC 1, spad 1, array 2, global buffer 6, DRAM 200 per 16-bit access).",
        "Eyeriss cycles are its published processing latency at 200 MHz. Model cycles step "
        "every distinct RUN pass cycle by cycle (equal to the RTL for a stream that never "
        "stalls, see docs/results/model_vs_rtl.md); the estimate in brackets is the bottleneck "
        "rule the mapper ranks candidates with. The cycles objective scores the "
        f"{refine} best mappings of the estimate again with the exact model and takes the best "
        f"of those (`refine = {refine}`).",
        "",
        "## Where we differ, and why",
        "",
        "- **Set placement.** rsaccel places `t` filter sets, each of `r` channel sets whose "
        "psums add up in the array (Eyeriss's `r`), as `t/h` stacked rows of `h` sets side by "
        "side (`(t/h)*r*R <= rows`, `h*e <= cols`). Side by side, as Eyeriss's CONV1 (two "
        "11 x 7 sets in 11 x 14 PEs), the sets share every ifmap value and take their filters "
        "by filter column ID: CONV1 went from one 11 x 11 set (121 PEs, 4.23 M cycles) to "
        "two 11 x 7 (154 PEs, 3.39 M), and CONV3-5 now use all 168 PEs as two 12 x 7 halves. "
        "Eyeriss also splits a wide set into segments below each other (CONV2: 5 x 14 + "
        "5 x 13); that does not exist here, so CONV2 gets at most two 5-row sets at most 14 "
        "wide.",
        "- **Cycles.** With the energy objective the layers are bound by the psum networks, "
        "not the MACs. The psum input and output networks each move one transfer per cycle, "
        "a group of `psum_group` psums (2 on `eyeriss`: consecutive filters of one output). "
        "Every channel pass (`r*q` channels) reads and writes every psum of its block: "
        "`t*e*ceil(p/2)*F*n` transfers, against `p*q*S*F*n` MAC cycles per PE. For CONV3 with "
        "`t=3, e=13, q=4, S=3` that is 1.6 transfers per MAC cycle (3.25 with one psum a "
        "transfer). Each PE takes its psums into a FIFO of a window's worth ahead of its MACs, "
        "so the network is not held while a PE works through a window's last slots (before "
        "that FIFO, it was: a PE took one psum a cycle and the others waited, which bound "
        "CONV2-5 whatever the network's width). Channel sets divide the transfers by `r`: the cycles "
        "objective picks `r = 2` or `4` for CONV2-5, where the psum networks, the ifmap "
        "network (each channel set needs its own rows) and the passes' start and end bound "
        "the passes instead, and between passes the filter LOAD and the stream's ifmap WRITE. "
        "The energy objective avoids `r` on CONV3/4 because fewer filters per block re-send "
        "the ifmap rows more often.",
        "- **PEs that do not hold each other up.** Each PE's psum output FIFO holds a "
        "window's sums (`psum_fifo_depth`; it held 2 transfers before 7923125). With 2, the "
        "top PEs of the columns the output network serves last fell a little further behind "
        "every window, and the multicast ifmap values, which wait for their slowest "
        "destination, then held the leading PEs at every row's end. And a PE's ifmap ring now "
        "takes the next row's positions during a row's last window instead of after it. "
        "Exact model, one RUN pass: CONV2 (e=14 t=1 p=16 q=2 n=2 r=2) 10,109 -> 9,100 "
        "cycles for 8,640 MAC slots a PE; CONV3 (e=13 t=2 p=18 q=4 n=2 r=2) 7,106 -> 6,496 "
        "for 5,616, where the psum input network (234 transfers a window for 216 slots) "
        "bounds it. RUN passes of the cycles mappings: 22.5 M -> 20.6 M cycles.",
        "- **Detached passes.** The compiler detaches every pass (stream format 4): a channel "
        "block's ifmap WRITE runs beside its filter LOAD, and the next channel block's "
        "filter WRITE beside the RUN pass. The model's `overlap` part counts the cycles so "
        "hidden. Where a block's data banks hold a second ifmap region, the later channel "
        "blocks' ifmap WRITEs go beside the previous RUN pass instead, and only the LOAD is "
        "left between RUN passes. The LOAD moves `filter_group` values a transfer (8 on "
        "`eyeriss`: a word from each of its two filter banks in one cycle; 4 before stream "
        "format 8) with the PE rows taking turns: about `max(rows, 8) * ceil(p*q*S/8)` "
        "cycles instead of `rows * p*q*S` (AlexNet, cycles mappings: the LOAD passes 1.62 M "
        "-> 0.84 M cycles). And every channel block but a block's first, whose rows went "
        "beside the previous RUN pass, now loads its filters in its own RUN pass (PE command "
        "LOAD_RUN): the filters load while the ifmap ring fills, and the LOAD passes left "
        "take 0.10 M cycles (AlexNet 20.90 M -> 20.47 M). Where two regions do not fit above "
        "the outputs, "
        "the second lies over them (the outputs are written only by a block's last RUN pass, "
        "which reads the first region): CONV1 (e=11, p=20, three channel blocks) had one "
        "region and gets two, 4.95 M -> 4.48 M cycles. A block that follows one with the same "
        "ifmap rows takes its channel blocks in reverse and starts from the rows left in the "
        "buffer (CONV1: 4.48 M -> 4.35 M). Without room for the second region, what is left "
        "between RUN passes is the longer of the LOAD and the ifmap WRITE (one stream word a "
        "cycle).",
        "- **Choice against Eyeriss's mapping.** The energy objective prefers fewer active PEs "
        "(t = 3, p = 16) over t = 4 on CONV3/4. The model counts every psum spill through the "
        "global buffer, so fewer, fuller filter blocks cost less energy. The `cycles` objective "
        "picks other mappings (`rsaccel map --objective cycles`).",
        "- **DRAM traffic.** It is 2.4x Eyeriss's. The stream carries no RLC compression yet "
        "(issue 5), and ifmap rows are sent again for every filter block (all but one channel "
        "block's, where the rows left in the buffer are reused). Command words and "
        "zero-padded 64-bit words add the rest.",
        "- **CONV1 and the psum chain.** Until the PE added `psum_in` with a window's last "
        "MAC (it used to start each output from it), the PEs of a psum chain ran one output "
        "apart. With `U = 4 < R = 11` an ifmap row goes to PEs at different chain positions "
        "along a diagonal, and a multicast value waits for every destination, whose rings hold "
        "only `window` positions: the leading PEs waited for the lagging ones and each chain's "
        "outputs serialised. The exact model put CONV1's RUN passes at 7.86 M cycles per image "
        "with the old PE and 0.95 M with the new one (energy mapping, batch 1); the bottleneck "
        "estimate never saw the coupling.",
        "- **Model accuracy.** The access counts and, with a stream that never stalls, the "
        "cycles are exact against the RTL: see docs/results/model_vs_rtl.md.",
    ]
    (RESULTS / "mapper_alexnet.md").write_text("\n".join(lines) + "\n")


def write_rtl(rows):
    meta = {"commit": source_version(), "date": time.strftime("%Y-%m-%d"), "preset": "tiny",
            "simulator": "amaranth", "stall": 0.0}
    (RESULTS / "model_vs_rtl.json").write_text(json.dumps({"meta": meta, "runs": rows},
                                                          indent=2) + "\n")
    worst = max(abs(r["cycle_error"]) for r in rows)
    worst_estimate = max(abs(r["estimate_error"]) for r in rows)
    lines = [
        "# Analytical model against the RTL counters (`tiny` preset, no stalls)",
        "",
        "Every test layer with the compiler's simple rule and the mapper's energy and cycles "
        "choices, then mappings with channel sets (`r > 1`) and with filter sets side by side "
        "(`h > 1`), some of them on `tiny` with 4 rows.",
        "",
        "| layer | mapping rule | e t p q n r h | 20 access counts | RTL cycles | model cycles | "
        "error | estimate | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["mapping"]
        lines.append(f"| {r['layer']} | {r['rule']} | {m['e']} {m['t']} {m['p']} {m['q']} "
                     f"{m['n']} {m.get('r', 1)} {m.get('h', 1)} | {'exact' if r['counts_exact'] else ', '.join(r['wrong_counts'])}"
                     f" | {r['rtl_cycles']:,} | {r['model_cycles']:,} | "
                     f"{r['cycle_error']:+.1%} | {r['estimated_cycles']:,} | "
                     f"{r['estimate_error']:+.1%} |")
    lines += ["", f"Worst cycle error {worst:.1%} (the estimate the mapper ranks with: "
              f"{worst_estimate:.1%}). Model cycles step every distinct RUN pass cycle by "
              "cycle (`rsaccel.sim.pass_timing`); every other command is costed from its words. "
              "Made with `python scripts/bench_mapper.py` at "
              f"commit {meta['commit']} on {meta['date']} (Amaranth simulator of the core)."]
    (RESULTS / "model_vs_rtl.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-rtl", action="store_true",
                        help="only the AlexNet part (no simulation)")
    parser.add_argument("--refine", type=int, default=10, metavar="K",
                        help="the cycles objective re-scores the K best mappings of the "
                             "estimate with the exact model (default: 10)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_alexnet(alexnet(args.refine), args.refine)
    if not args.skip_rtl:
        write_rtl(model_vs_rtl())


if __name__ == "__main__":
    main()
