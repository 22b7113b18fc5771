"""FPGA board targets: an amaranth-boards platform, a preset that fits it, and the board top.

Each target pairs a platform from amaranth-boards with the configuration preset of the same name
in :data:`rsaccel.config.PRESETS` (sized for the device) and a clock target for timing analysis.
The board top (:class:`BoardTop`) runs the :class:`~rsaccel.boards.selftest.SelfTest` from the
board clock and shows its outcome and register read-back signature on the LEDs, so every part of
the accelerator drives an output pin and nothing is pruned.
"""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import io

from ..config import require_config
from .selftest import SelfTest, selftest_program

__all__ = ["BoardTarget", "BOARDS", "board", "BoardTop", "BoardError"]


class BoardError(ValueError):
    """An unknown board or a configuration that the board top cannot use."""


@dataclass(frozen=True)
class BoardTarget:
    """One FPGA board.

    Attributes
    ----------
    name : str
        Name used on the command line (``--board``), also the name of its preset.
    platform_path : str
        ``module:Class`` of the amaranth-boards platform.
    family : str
        ``ecp5`` or ``ice40``; selects the nextpnr flavour.
    target_hz : float
        Clock frequency the timing analysis is constrained to (the Fmax goal; the board clock
        itself may be slower).
    leds : tuple of (str, int)
        LED resources (name, number) in order: passed, failed, done, then read-back signature bits.
    extra_resources : str or None
        Attribute of the platform holding resources to add (e.g. the iCEBreaker's break-off
        LED/button board).
    """
    name: str
    platform_path: str
    family: str
    target_hz: float
    leds: tuple
    extra_resources: str = None

    def platform(self):
        """A new instance of the board's amaranth-boards platform."""
        import importlib
        module_name, class_name = self.platform_path.split(":")
        platform = getattr(importlib.import_module(module_name), class_name)()
        if self.extra_resources:
            platform.add_resources(getattr(platform, self.extra_resources))
        return platform


BOARDS = {
    "ulx3s-85f": BoardTarget(
        name="ulx3s-85f", platform_path="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        family="ecp5", target_hz=100e6, leds=tuple(("led", i) for i in range(8))),
    "icebreaker": BoardTarget(
        name="icebreaker", platform_path="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40", target_hz=12e6,
        leds=(("led_g", 0), ("led_r", 0), ("led_g", 1), ("led_g", 2), ("led_g", 3),
              ("led_g", 4), ("led_r", 1)), extra_resources="break_off_pmod"),
}


def board(name):
    """The :class:`BoardTarget` called ``name``; :class:`BoardError` listing the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"Unknown board {name!r}; known boards: "
                         f"{', '.join(sorted(BOARDS))}") from None


class BoardTop(Elaboratable):
    """Board top: the self-test on the board clock, its results on the LEDs.

    LED order is the target's ``leds``: passed, failed, done (lit once the self-test ends), then
    the XOR-folded register read-back signature on the remaining LEDs.

    Parameters
    ----------
    target : BoardTarget
    config : AccelConfig
    program : SelfTestProgram, optional
        Defaults to :func:`~rsaccel.boards.selftest.selftest_program` of ``config``.
    """

    def __init__(self, target, config, program=None):
        if not isinstance(target, BoardTarget):
            raise TypeError(f"Target must be a BoardTarget, not {target!r}")
        require_config(config)
        self.target = target
        self.config = config
        self.program = program if program is not None else selftest_program(config)
        self.selftest = SelfTest(config, self.program)

    def elaborate(self, platform):
        m = Module()
        m.submodules.selftest = st = self.selftest
        sig_leds = len(self.target.leds) - 3
        folded = Signal(sig_leds)
        bits = Cat(st.readback, st.mismatches)
        m.d.comb += folded.eq(0)
        for i in range(0, len(bits), sig_leds):
            folded_next = Signal(sig_leds)
            m.d.comb += folded_next.eq(folded ^ bits[i:i + sig_leds])
            folded = folded_next
        outputs = [st.passed, st.failed, st.done] + [folded[i] for i in range(sig_leds)]
        if platform is not None:
            for (name, number), value in zip(self.target.leds, outputs):
                pin = platform.request(name, number, dir="-")
                m.submodules[f"{name}_{number}"] = buffer = io.Buffer("o", pin)
                m.d.comb += buffer.o.eq(value)
        else:  # simulation: expose the LED values
            self.led_values = Signal(len(outputs))
            m.d.comb += self.led_values.eq(Cat(*outputs))
        return m
