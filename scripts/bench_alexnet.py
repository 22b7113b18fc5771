#!/usr/bin/env python3
"""Benchmark: AlexNet CONV1-5 on the accelerator in Verilator, against Eyeriss's published run.

Runs each layer (batch 4 by default; CONV2, 4, 5 in two groups as Eyeriss runs them) on the
generated Verilog of a preset, checks the ofmap against the golden model bit for bit, and
reports per layer and in total: cycles, PE utilisation (MACs / (cycles x PEs)), active PEs,
stream words in/out per MAC (16-bit words), global-buffer accesses, gated MACs and simulation
wall time, beside Eyeriss's figures (reference section 5). Inputs are ReLU'd random values with
Eyeriss's measured ifmap sparsity per layer. Writes JSON and a Markdown table to --out.

    python scripts/bench_alexnet.py                     # all five layers, batch 4 (long)
    python scripts/bench_alexnet.py --layers conv3 --batch 1
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rsaccel import preset
from rsaccel.gen.compiler import Layer
from rsaccel.sim.golden import conv2d
from rsaccel.sim.provenance import source_version
from rsaccel.sim.runtime import MAPPERS, RUN_SIMULATORS, pick_mapping, run_layer

#: AlexNet as Eyeriss runs it (H, W before padding; C per layer, split into `groups`).
ALEXNET = {
    "conv1": dict(C=3, M=96, H=227, W=227, R=11, S=11, stride=4, pad=0, groups=1),
    "conv2": dict(C=96, M=256, H=27, W=27, R=5, S=5, stride=1, pad=2, groups=2),
    "conv3": dict(C=256, M=384, H=13, W=13, R=3, S=3, stride=1, pad=1, groups=1),
    "conv4": dict(C=384, M=384, H=13, W=13, R=3, S=3, stride=1, pad=1, groups=2),
    "conv5": dict(C=384, M=256, H=13, W=13, R=3, S=3, stride=1, pad=1, groups=2),
}
#: Eyeriss v1 measured (batch 4, 200 MHz): active PEs, ifmap zero fraction, processing ms.
EYERISS = {
    "conv1": dict(active_pes=154, zeros=0.0, processing_ms=16.5),
    "conv2": dict(active_pes=135, zeros=0.387, processing_ms=39.2),
    "conv3": dict(active_pes=156, zeros=0.725, processing_ms=21.8),
    "conv4": dict(active_pes=156, zeros=0.793, processing_ms=16.0),
    "conv5": dict(active_pes=156, zeros=0.776, processing_ms=10.0),
}


def tensors(config, layer, zeros, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 256, size=(layer.N, layer.C, layer.H, layer.W))    # ReLU'd: >= 0
    x[rng.random(x.shape) < zeros] = 0
    w = rng.integers(-128, 128, size=(layer.M, layer.C // layer.groups, layer.R, layer.S))
    b = rng.integers(-1000, 1000, size=layer.M)
    return x, w, b


def write_report(args, config, rows, version):
    """Write the JSON and Markdown of the layers run so far; return the Markdown lines."""
    total = {
        "macs": sum(r["macs"] for r in rows), "cycles": sum(r["cycles"] for r in rows),
        "eyeriss_cycles": sum(r["eyeriss_cycles"] for r in rows),
        "sim_wall_seconds": round(sum(r["sim_wall_seconds"] for r in rows), 1),
    }
    total["utilisation"] = total["macs"] / max(1, total["cycles"] * config.num_pes)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"preset": args.preset, "batch": args.batch, "simulator": args.sim,
            "seed": args.seed, "mapper": args.mapper, "refine": args.refine,
            "source": version, "config": config.as_dict()}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "layers": rows,
                                                    "total": total}, indent=2) + "\n")
    lines = [
        f"# AlexNet CONV on `{args.preset}` (batch {args.batch}, {args.sim}, "
        f"{args.mapper} mapping)",
        "",
        "| layer | MACs (M) | cycles | Eyeriss cycles | utilisation | active PEs (Eyeriss) | "
        "passes | words in / MAC | words out / MAC | GLB accesses | gated MACs | bit-exact | "
        "model cycles | model counts exact | sim wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layer']} | {r['macs'] / 1e6:.1f} | {r['cycles']:,} | {r['eyeriss_cycles']:,} "
            f"| {r['utilisation']:.1%} | {r['active_pes']} ({r['eyeriss_active_pes']}) | "
            f"{r['passes']} | {r['words_in_per_mac']:.4f} | {r['words_out_per_mac']:.4f} | "
            f"{r['glb_accesses']:,} | {r['gated_macs']:,} | {r['bit_exact']} | "
            f"{r['model_cycles']:,} | {r['model_counts_exact']} | {r['sim_wall_seconds']} |")
    lines.append(f"| total | {total['macs'] / 1e6:.1f} | {total['cycles']:,} | "
                 f"{total['eyeriss_cycles']:,} | {total['utilisation']:.1%} | | | | | | | | | | "
                 f"{total['sim_wall_seconds']} |")
    lines += ["", "Eyeriss cycles: published processing latency at 200 MHz for batch 4 "
              "(reference section 5), scaled linearly to this run's batch. Measured at "
              f"{version}; sim wall s is the run alone (no build, mapping or golden model)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="eyeriss")
    parser.add_argument("--layers", nargs="+", default=list(ALEXNET), choices=list(ALEXNET))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sim", default="verilator-cpp", choices=RUN_SIMULATORS,
                        help="backend (default: verilator-cpp, Verilator with the C++ "
                             "testbench; 'verilator' is the same model under cocotb)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mapper", default="energy", choices=MAPPERS)
    parser.add_argument("--refine", type=int, default=1, metavar="K",
                        help="the mapper re-scores its K best candidates with the exact model "
                             "(see 'rsaccel map --refine'; default: 1)")
    parser.add_argument("--build-dir", default="build/bench")
    parser.add_argument("--out", default="docs/results/alexnet")
    args = parser.parse_args(argv)

    config = preset(args.preset)
    version = source_version()
    rows = []
    for name in args.layers:
        layer = Layer(N=args.batch, relu=True, out_shift=8, **ALEXNET[name])
        x, w, b = tensors(config, layer, EYERISS[name]["zeros"], args.seed)
        mapping = pick_mapping(config, layer, args.mapper, ifmap=x, refine=args.refine)
        print(f"{name}: {layer.macs / 1e6:.1f} M MACs, mapping {mapping.as_dict()}", flush=True)
        start = time.time()
        result = run_layer(config, layer, x, w, b, simulator=args.sim,
                           build_root=args.build_dir, seed=args.seed, mapping=mapping,
                           max_cycles=2_000_000_000)
        wall = time.time() - start
        ref = conv2d(x, w, b, stride=layer.stride, pad=layer.pad, groups=layer.groups,
                     relu=True, out_shift=8)
        exact = bool(np.array_equal(result.ofmap, ref))
        c = result.counters
        glb = sum(v for k, v in c.items() if k.startswith("glb_"))
        per_word = config.stream_width // 16
        row = {
            "layer": name, "macs": layer.macs, "cycles": c["cycles"],
            "utilisation": layer.macs / (c["cycles"] * config.num_pes),
            "active_pes": mapping.active_pes, "mapping": mapping.as_dict(),
            "passes": result.passes,
            "words_in_per_mac": c["words_in"] * per_word / layer.macs,
            "words_out_per_mac": c["words_out"] * per_word / layer.macs,
            "glb_accesses": glb, "gated_macs": c["gated_macs"],
            "ifmap_zero_fraction": float(np.mean(x == 0)),
            # the simulation alone, and all of run_layer (build check, model, compiler)
            "sim_wall_seconds": round(result.wall_seconds, 1),
            "run_layer_seconds": round(wall, 1), "bit_exact": exact,
            "eyeriss_active_pes": EYERISS[name]["active_pes"],
            # Eyeriss's figure is for batch 4: scaled to this run's batch
            "eyeriss_cycles": int(EYERISS[name]["processing_ms"] * 1e-3 * 200e6
                                  * args.batch / 4),
            "counters": c,
            # the analytical model's prediction for this run (rsaccel.sim.perf_model)
            "model_cycles": result.model["cycles"],
            "model_counts_exact": all(result.model["counts"][k] == c[k]
                                      for k in result.model["counts"]),
        }
        rows.append(row)
        print(f"  cycles {row['cycles']:,} (Eyeriss {row['eyeriss_cycles']:,}), utilisation "
              f"{row['utilisation']:.1%}, bit-exact {exact}, simulation {result.wall_seconds:.0f} s "
              f"({c['cycles'] / max(result.wall_seconds, 1e-9):,.0f} cycles/s)", flush=True)
        if not exact:
            print(f"  MISMATCH against the golden model", file=sys.stderr)
        write_report(args, config, rows, version)     # a long run keeps what it has done

    print("\n".join(write_report(args, config, rows, version)))
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
