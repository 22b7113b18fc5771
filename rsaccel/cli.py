"""The ``rsaccel`` command line."""

import argparse
import sys

from . import __version__
from .config import AccelConfig, ConfigError, parse_value, preset

__all__ = ["main"]


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


def _set_pair(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, not {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def resolve_config(preset_name, settings):
    """Apply ``--set`` pairs over a preset; raise :class:`UsageError` naming the problem."""
    try:
        base = preset(preset_name)
        changes = {name: parse_value(name, value) for name, value in settings}
        return base.replace(**changes) if changes else base
    except (ConfigError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _cmd_generate(args):
    from .gen.verilog import generate
    config = resolve_config(args.preset, args.set)
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


def build_parser():
    parser = _Parser(
        prog="rsaccel",
        description="Generate and run Eyeriss-style row-stationary CNN accelerators.")
    parser.add_argument("--version", action="version", version=f"rsaccel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    gen = sub.add_parser("generate", help="write Verilog and a JSON manifest",
                         description="Elaborate a configuration to Verilog plus manifest.json.")
    gen.add_argument("--preset", default="eyeriss",
                     help="named configuration to start from (default: eyeriss)")
    gen.add_argument("--set", action="append", default=[], type=_set_pair,
                     metavar="FIELD=VALUE",
                     help="override one configuration field; repeatable. Fields: "
                          + ", ".join(AccelConfig.field_names()))
    gen.add_argument("-o", "--output", required=True, metavar="DIR",
                     help="output directory (created if missing)")
    gen.add_argument("--name", default="rsaccel",
                     help="name of the top-level Verilog module (default: rsaccel)")
    gen.add_argument("--block", choices=["accelerator", "pe", "array"], default="accelerator",
                     help="which block is the top level (default: accelerator, the whole "
                          "design; pe and array emit those blocks alone)")
    gen.set_defaults(func=_cmd_generate)
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
