import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def hdl_build_root():
    """Where generated Verilog and simulator builds go (``RSACCEL_BUILD_DIR`` or ./build/tests).

    Builds are keyed by block, simulator and configuration hash, so one configuration is built
    once and shared by every test of a session (tests sharing a build share an xdist group).
    """
    root = Path(os.environ.get("RSACCEL_BUILD_DIR", Path.cwd() / "build" / "tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root
