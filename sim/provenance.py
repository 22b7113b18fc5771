"""Where a benchmark's numbers come from: the source revision they were measured at."""

import subprocess
from pathlib import Path

__all__ = ["source_version"]


def source_version(cwd=None):
    """The short git commit of the work tree at ``cwd`` (default: this package's checkout), with
    ``+dirty`` if tracked files have uncommitted changes, or ``"unknown"`` outside git."""
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, cwd=cwd).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
