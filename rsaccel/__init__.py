"""rsaccel: a generator of Eyeriss-style row-stationary CNN accelerators.

Sub-packages: :mod:`rsaccel.hw` (Amaranth components), :mod:`rsaccel.gen` (Verilog generation),
:mod:`rsaccel.sim` (golden models and cocotb testbenches), :mod:`rsaccel.boards` (FPGA targets).
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .config import AccelConfig, PRESETS, preset

try:
    __version__ = _version("rsaccel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["AccelConfig", "PRESETS", "preset", "__version__"]
