"""The ``rsaccel`` command line."""

import argparse
import json
import sys

from . import __version__
from .config import PRESETS, AccelConfig, ConfigError, resolve

__all__ = ["main"]


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


def _set_pair(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, not {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def resolve_config(preset_name, settings, config_file=None):
    """Preset, then ``--config`` file, then ``--set`` pairs; :class:`UsageError` on a problem."""
    try:
        return resolve(preset_name, config_file, settings)
    except (ConfigError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _cmd_generate(args):
    from .gen.verilog import generate
    config = resolve_config(args.preset, args.set, args.config)
    try:
        paths = generate(config, args.output, name=args.name, block=args.block)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write to {args.output!r}: {exc.strerror or exc}") from None
    for path in paths:
        print(path)
    return 0


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line (``rsaccel: error: ...``) and exit status 2."""

    def error(self, message):
        self.exit(2, f"rsaccel: error: {message} (see '{self.prog} --help')\n")


LAYER_FIELDS = ("N", "C", "M", "H", "W", "R", "S", "stride", "pad", "groups", "relu",
                "out_shift")


def load_layer(path):
    """A :class:`~rsaccel.gen.compiler.Layer` from a JSON file; UsageError on any problem."""
    import json
    from .gen.compiler import Layer, LayerError
    try:
        with open(path) as f:
            spec = json.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read layer file {path!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"layer file {path!r} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"layer file {path!r} must hold a JSON object")
    unknown = sorted(set(spec) - set(LAYER_FIELDS))
    if unknown:
        raise UsageError(f"layer file {path!r}: unknown field {unknown[0]!r}; fields are "
                         f"{', '.join(LAYER_FIELDS)}")
    missing = [k for k in ("N", "C", "M", "H", "W", "R", "S") if k not in spec]
    if missing:
        raise UsageError(f"layer file {path!r}: missing field {missing[0]!r}")
    try:
        layer = Layer(**spec)
        layer.validate()
    except (LayerError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return layer


def _cmd_run(args):
    import json
    from pathlib import Path

    import numpy as np

    from .gen.compiler import LayerError
    from .sim.runtime import AcceleratorError, run_layer

    config = resolve_config(args.preset, args.set, args.config)
    layer = load_layer(args.layer)
    try:
        archive = np.load(args.inputs)
    except OSError as exc:
        raise UsageError(f"cannot read inputs file {args.inputs!r}: {exc}") from None
    except ValueError as exc:
        raise UsageError(f"inputs file {args.inputs!r} is not an .npz archive: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):   # a plain .npy array
        raise UsageError(f"inputs file {args.inputs!r} is not an .npz archive (it holds one "
                         f"array; save ifmap, weights and bias with numpy.savez)")
    with archive:
        tensors = {}
        for key in ("ifmap", "weights", "bias"):
            if key not in archive.files:
                raise UsageError(f"inputs file {args.inputs!r} has no array {key!r} "
                                 f"(it needs ifmap, weights and bias)")
            tensors[key] = archive[key]
    try:
        result = run_layer(config, layer, tensors["ifmap"], tensors["weights"], tensors["bias"],
                           simulator=args.sim, build_root=args.build_dir, seed=args.seed,
                           stall=args.stall, mapper=args.mapper, refine=args.refine,
                           rlc_in=args.rlc in ("in", "both"), rlc_out=args.rlc in ("out", "both"))
    except (LayerError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except AcceleratorError as exc:
        print(f"rsaccel: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, ofmap=result.ofmap)
    except OSError as exc:
        raise UsageError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    report = {
        "layer": {k: getattr(layer, k) for k in LAYER_FIELDS},
        "preset": args.preset, "config": config.as_dict(), "simulator": args.sim,
        "mapping": result.mapping, "passes": result.passes, "macs": layer.macs, "rlc": args.rlc,
        "counters": result.counters, "wall_seconds": round(result.wall_seconds, 3),
        "model": result.model,
    }
    report_path = out.with_suffix(".json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    c = result.counters
    print(f"layer {layer.N}x{layer.C}x{layer.H}x{layer.W} -> {layer.M}x{layer.E}x{layer.F}, "
          f"{layer.macs} MACs, mapping {result.mapping}")
    predicted = result.model.get("cycles")
    if not c:
        print("no performance counters (perf_counters = false)")
        if predicted:
            print(f"model: cycles {predicted} ({result.model['cycle_model']}), energy "
                  f"{result.model['total_energy']:,.0f} MAC units")
    else:
        util = layer.macs / max(1, c["cycles"] * config.num_pes)
        print(f"cycles {c['cycles']} (busy {c['busy_cycles']}, stalled on input "
              f"{c['stall_in_cycles']}, on output {c['stall_out_cycles']}), PE utilisation "
              f"{util:.1%}, gated MACs {c['gated_macs']}, stream words in {c['words_in']} / out "
              f"{c['words_out']}")
        if predicted:
            print(f"model: cycles {predicted} ({(predicted - c['cycles']) / c['cycles']:+.1%} "
                  f"against the RTL), energy {result.model['total_energy']:,.0f} MAC units")
    print(f"wrote {out} and {report_path}")
    return 0


def _add_config_options(parser, default_preset="eyeriss", default_help=None):
    """``--preset``, ``--config`` and ``--set``: how every subcommand picks a configuration."""
    parser.add_argument("--preset", default=default_preset, metavar="NAME",
                        help=f"named configuration to start from: {', '.join(PRESETS)} "
                             f"(default: {default_help or default_preset})")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML file with any subset of the configuration's fields as "
                             "top-level keys (e.g. 'rows = 8'), applied over the preset")
    parser.add_argument("--set", action="append", default=[], type=_set_pair,
                        metavar="FIELD=VALUE",
                        help="override one configuration field, after --config; repeatable. "
                             "Fields: " + ", ".join(AccelConfig.field_names()))


def _cmd_map(args):
    from .gen.compiler import LayerError
    from .gen.mapper import choose_mapping, mapping_buffer_split
    from .gen.networks import NETWORKS, load_network, network
    from .sim.perf_model import EnergyCosts

    config = resolve_config(args.preset, args.set, args.config)
    if (args.layer is None) == (args.network is None):
        raise UsageError("give exactly one of --layer and --network")
    if not 0.0 <= args.zero_fraction <= 1.0:
        raise UsageError(f"--zero-fraction must be within 0..1, not {args.zero_fraction}")
    if args.stream_bandwidth <= 0:
        raise UsageError(f"--stream-bandwidth must be positive, not {args.stream_bandwidth}")
    if args.batch is not None and args.batch < 1:
        raise UsageError(f"--batch must be at least 1, not {args.batch}")
    from dataclasses import replace
    if args.layer is not None:
        entries = [("layer", load_layer(args.layer), 1)]
        if args.batch is not None:
            entries = [(n, replace(layer, N=args.batch), r) for n, layer, r in entries]
    else:
        try:
            if args.network in NETWORKS:
                layers = network(args.network, batch=args.batch or 1)
            else:
                layers = load_network(args.network)
                if args.batch is not None:
                    layers = [replace(nl, layer=replace(nl.layer, N=args.batch))
                              for nl in layers]
        except OSError as exc:
            raise UsageError(f"--network {args.network!r} is neither a known network "
                             f"({', '.join(NETWORKS)}) nor a readable file: "
                             f"{exc.strerror or exc}") from None
        except (LayerError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        entries = [(nl.name, nl.layer, nl.repeat) for nl in layers]
    costs = EnergyCosts()
    rows = []
    for name, layer, repeat in entries:
        try:
            mapping, model, candidates = choose_mapping(
                config, layer, objective=args.objective, zero_fraction=args.zero_fraction,
                costs=costs, stream_words_per_cycle=args.stream_bandwidth,
                cycle_model=args.cycle_model, refine=args.refine)
        except LayerError as exc:
            if args.layer is not None:
                raise UsageError(str(exc)) from None
            rows.append({"name": name, "repeat": repeat, "error": str(exc)})
            continue
        entry = {"name": name, "repeat": repeat,
                 "layer": {k: getattr(layer, k) for k in LAYER_FIELDS},
                 "candidates": candidates, "buffer_words": mapping_buffer_split(config, layer, mapping)}
        entry.update(model.as_dict(config))
        rows.append(entry)
    if args.json:
        print(json.dumps({"config": config.as_dict(), "objective": args.objective,
                          "zero_fraction": args.zero_fraction,
                          "stream_words_per_cycle": args.stream_bandwidth,
                          "cycle_model": args.cycle_model, "refine": args.refine,
                          "energy_costs": costs.__dict__, "layers": rows}, indent=2))
        return 0
    if args.layer is not None:
        _print_layer_map(config, rows[0])
    else:
        _print_network_map(config, rows)
    return 0


def _print_layer_map(config, row):
    mp, k = row["mapping"], row["counts"]
    lanes = config.lanes
    print(f"mapping: e={mp['e']} t={mp['t']} p={mp['p']} q={mp['q']} n={mp['n']} "
          f"r={mp.get('r', 1)} h={mp.get('h', 1)}, "
          f"{mp['active_pes']} of {config.num_pes} PEs active ({row['candidates']} legal "
          f"mappings scored)")
    split = ", ".join(f"{k_} {v}" for k_, v in row["buffer_words"].items())
    print(f"global buffer words per block: {split}")
    print(f"passes {row['passes']}, cycles {row['cycles']:,} ({row['cycle_model']}, "
          f"utilisation {row['utilisation']:.1%}), MACs {row['macs']:,} ({k['gated_macs']:,.0f} gated)")
    print(f"stream words in {k['words_in']:,} / out {k['words_out']:,} "
          f"({(k['words_in'] + k['words_out']) * lanes / row['macs']:.4f} 16-bit words per MAC)")
    print()
    print("| level | filter | ifmap | psum | other | total |")
    print("|---|---|---|---|---|---|")
    for level, parts in row["energy"].items():
        other = sum(v for n, v in parts.items() if n not in ("filter", "ifmap", "psum"))
        cells = [parts.get(n, 0.0) for n in ("filter", "ifmap", "psum")] + [other]
        print(f"| {level} | " + " | ".join(f"{v:,.0f}" for v in cells)
              + f" | {sum(parts.values()):,.0f} |")
    print(f"| total | | | | | {row['total_energy']:,.0f} |")
    print(f"\nenergy in units of one MAC; {row['total_energy'] / row['macs']:.2f} per MAC")


def _print_network_map(config, rows):
    print("| layer | x | N C M H R U | mapping e t p q n r h | PEs | cycles | util | "
          "DRAM words/MAC | energy/MAC |")
    print("|---|---|---|---|---|---|---|---|---|")
    total_cycles = total_macs = total_energy = total_dram = 0
    for row in rows:
        if "error" in row:
            print(f"| {row['name']} | {row['repeat']} | refused: {row['error']} | | | | | | |")
            continue
        ly, mp, k = row["layer"], row["mapping"], row["counts"]
        r = row["repeat"]
        dram = (k["words_in"] + k["words_out"]) * config.lanes
        print(f"| {row['name']} | {r} | {ly['N']} {ly['C']} {ly['M']} {ly['H']} {ly['R']} "
              f"{ly['stride']} | {mp['e']} {mp['t']} {mp['p']} {mp['q']} {mp['n']} "
              f"{mp.get('r', 1)} {mp.get('h', 1)} | "
              f"{mp['active_pes']} | {row['cycles']:,} | {row['utilisation']:.1%} | "
              f"{dram / row['macs']:.4f} | {row['total_energy'] / row['macs']:.2f} |")
        total_cycles += r * row["cycles"]
        total_macs += r * row["macs"]
        total_energy += r * row["total_energy"]
        total_dram += r * dram
    if total_macs:
        util = total_macs / (total_cycles * config.num_pes)
        print(f"| total | | | | | {total_cycles:,} | {util:.1%} | "
              f"{total_dram / total_macs:.4f} | {total_energy / total_macs:.2f} |")


def _cmd_build(args):
    from pathlib import Path

    from .boards.build import build_board, missing_tools
    from .boards.targets import BoardError, board

    try:
        target = board(args.board)
    except BoardError as exc:
        raise UsageError(str(exc)) from None
    config = resolve_config(args.preset or target.name, args.set, args.config)
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, not {args.seeds}")
    missing = missing_tools(target)
    if missing:
        raise UsageError(f"missing FPGA tools {', '.join(missing)}; install them with "
                         f"pip install 'rsaccel[boards]'")
    from .gen.compiler import LayerError
    out = Path(args.output or Path("build") / target.name)
    try:
        result = build_board(target, config, out, seeds=range(1, args.seeds + 1),
                             log=lambda text: print(text, file=sys.stderr))
        from .boards.report import critical_path_lines, markdown_table
        (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "report.md").write_text(markdown_table([result]) + critical_path_lines(result))
    except LayerError as exc:   # the self-test's built-in layer cannot run on this config
        raise UsageError(f"the board self-test layer cannot run on this configuration: "
                         f"{exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write to {str(out)!r}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        print(f"rsaccel: error: {exc}", file=sys.stderr)
        return 1
    print(markdown_table([result]), end="")
    print(f"wrote {out / 'report.json'}, {out / 'report.md'} and the bitstream in {out}")
    return 0


def build_parser():
    parser = _Parser(
        prog="rsaccel",
        description="Generate and run Eyeriss-style row-stationary CNN accelerators.")
    parser.add_argument("--version", action="version", version=f"rsaccel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    gen = sub.add_parser(
        "generate", help="write Verilog, a JSON manifest, a C header and a report",
        description="Elaborate a configuration to NAME.v plus manifest.json (resolved "
                    "configuration, derived sizes, ports, register map, stream format and tool "
                    "versions), NAME.h (the same parameters and register map for C) and "
                    "report.txt. The same inputs give byte-identical files.")
    _add_config_options(gen)
    gen.add_argument("-o", "--output", required=True, metavar="DIR",
                     help="output directory (created if missing)")
    gen.add_argument("--name", default="rsaccel",
                     help="name of the top-level Verilog module, of NAME.v and NAME.h, and "
                          "the prefix of the header's macros (default: rsaccel)")
    gen.add_argument("--block", choices=["accelerator", "pe", "array", "rlc_decoder", "rlc_encoder"], default="accelerator",
                     help="which block is the top level (default: accelerator, the whole "
                          "design; the others emit one block alone, e.g. for unit tests)")
    gen.set_defaults(func=_cmd_generate)

    run = sub.add_parser("run", help="run one layer on the accelerator in simulation",
                         description="Map and compile a layer, run it on the generated Verilog "
                                     "under cocotb, and write the ofmap plus a JSON of the "
                                     "counters and the mapping.")
    _add_config_options(run)
    run.add_argument("--layer", required=True, metavar="LAYER.json",
                     help="layer shape: N, C, M, H, W, R, S, stride, pad, groups, relu, "
                          "out_shift (H and W before padding)")
    run.add_argument("--inputs", required=True, metavar="IN.npz",
                     help="ifmap (N, C, H, W), weights (M, C/groups, R, S), bias (M,)")
    run.add_argument("--out", required=True, metavar="OUT.npz",
                     help="where the ofmap (N, M, E, F) goes; OUT.json gets the counters")
    run.add_argument("--sim", choices=["verilator", "icarus", "verilator-cpp"],
                     default="verilator",
                     help="Verilog simulator: cocotb under Verilator or Icarus, or Verilator "
                          "with a C++ testbench (verilator-cpp: the same run, with no Python "
                          "in the clock loop; far faster on large arrays) (default: verilator)")
    run.add_argument("--seed", type=int, default=0,
                     help="seed of the random stream stalls (default: 0)")
    run.add_argument("--stall", type=float, default=0.0,
                     help="probability of an idle or back-pressure cycle on the streams "
                          "(default: 0)")
    run.add_argument("--mapper", choices=["energy", "cycles", "simple"], default="energy",
                     help="how the mapping is chosen: the mapper minimising modelled energy or "
                          "cycles, or the compiler's simple rule (default: energy)")
    run.add_argument("--refine", type=_positive_int, default=1, metavar="K",
                     help="score the K best mappings of the fast estimate again with the exact "
                          "model and take the best of those; the estimate can be several per "
                          "cent low on big layers. Costs K exact models per layer, seconds each "
                          "on AlexNet's layers (default: 1, the estimate's best)")
    run.add_argument("--rlc", choices=["none", "in", "out", "both"], default="none",
                     help="which feature maps cross the stream run-length coded: the ifmap "
                          "(in), the ofmap (out), both, or none; filters and biases always go "
                          "plain (default: none, as for a network's first layer)")
    run.add_argument("--build-dir", default="build/sim",
                     help="where simulator builds are kept, one per configuration "
                          "(default: build/sim)")
    run.set_defaults(func=_cmd_run)

    mp = sub.add_parser(
        "map", help="map a layer or a network and show the model's cycles and energy",
        description="Enumerate the legal row-stationary mappings of a layer (or of every layer "
                    "of a network), score each with the analytical model and print the best: "
                    "its mapping, active PEs, utilisation, cycles, stream traffic and the "
                    "energy per level and data type (units of one MAC: MAC 1, spad 1, array 2, "
                    "global buffer 6, DRAM 200).")
    _add_config_options(mp)
    mp.add_argument("--layer", metavar="LAYER.json",
                    help="one layer (the fields of 'rsaccel run --layer')")
    mp.add_argument("--network", metavar="NAME|FILE.json",
                    help="a shipped network (alexnet, vgg16, resnet50, mobilenet_v1, lenet5) "
                         "or a JSON list of layers (layer fields plus 'name' and 'repeat')")
    mp.add_argument("--batch", type=int, metavar="N",
                    help="batch size N for every layer (default: the layer file's N; 1 for "
                         "shipped networks)")
    mp.add_argument("--objective", choices=["energy", "cycles"], default="energy",
                    help="what the mapper minimises (default: energy)")
    mp.add_argument("--refine", type=_positive_int, default=1, metavar="K",
                    help="score the K best mappings of the fast estimate again with the exact "
                         "model and take the best of those; the estimate can be several per "
                         "cent low on big layers. Costs K exact models per layer, seconds each "
                         "on AlexNet's layers (default: 1, the estimate's best)")
    mp.add_argument("--zero-fraction", type=float, default=0.0, metavar="Z",
                    help="expected fraction of zero ifmap values, for gated MACs (default: 0)")
    mp.add_argument("--stream-bandwidth", type=float, default=1.0, metavar="W",
                    help="input stream bandwidth in 64-bit words per cycle (default: 1)")
    mp.add_argument("--cycle-model", choices=["exact", "estimate"], default="exact",
                    help="how the chosen mapping's RUN passes are timed: 'exact' steps each "
                         "distinct pass cycle by cycle and equals the RTL for a stream that "
                         "never stalls (up to tens of seconds for a large layer), 'estimate' "
                         "takes each pass's bottleneck (instant; what candidates are ranked "
                         "with). Zero skipping is always estimated (default: exact)")
    mp.add_argument("--json", action="store_true",
                    help="print everything as JSON instead of tables")
    mp.set_defaults(func=_cmd_map)

    from .boards.targets import BOARDS
    bld = sub.add_parser(
        "build", help="build a bitstream for an FPGA board with the open toolchains",
        description="Build the accelerator with its self-test top (streams a built-in layer, "
                    "checks the result, shows pass/fail on the LEDs) for a board, with YoWASP "
                    "Yosys and nextpnr, and report utilisation and Fmax.")
    bld.add_argument("--board", required=True, choices=sorted(BOARDS),
                     help="target board")
    _add_config_options(bld, default_preset=None, default_help="the board's own preset")
    bld.add_argument("-o", "--output", metavar="DIR",
                     help="build directory (default: build/BOARD)")
    bld.add_argument("--seeds", type=int, default=1, metavar="K",
                     help="place and route with seeds 1..K and report the Fmax spread "
                          "(default: 1)")
    bld.set_defaults(func=_cmd_build)
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help, --version and usage errors (already printed)
        return exc.code
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"rsaccel: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
