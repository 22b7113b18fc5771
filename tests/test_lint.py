"""Generated Verilog passes `verilator --lint-only -Wall` (with the waiver file) and iverilog -g2012."""

import shutil
import subprocess

import pytest

from rsaccel import preset
from rsaccel.gen.verilog import generate
from rsaccel.sim.cocotb_tb.runner import ensure_verilator_on_path, waiver_file


#: variants of a preset linted besides the preset itself
VARIANTS = {"eyeriss+skipping": ("eyeriss", {"zero_skipping": True})}


@pytest.fixture(scope="module", params=[
    ("tiny", "accelerator"), ("eyeriss", "pe"), ("eyeriss+skipping", "pe"),
    pytest.param(("eyeriss", "array"), marks=pytest.mark.slow),
    pytest.param(("eyeriss", "accelerator"), marks=pytest.mark.slow),  # ~1 min to generate
], ids=lambda p: "-".join(p))
def verilog_file(request, tmp_path_factory):
    preset_name, block = request.param
    out = tmp_path_factory.mktemp(f"lint-{preset_name.replace('+', '-')}-{block}")
    name, overrides = VARIANTS.get(preset_name, (preset_name, {}))
    generate(preset(name).replace(**overrides), out, name="rsaccel", block=block)
    return out / "rsaccel.v"


def test_verilator_lint_wall(verilog_file):
    ensure_verilator_on_path()
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(waiver_file()),
                           str(verilog_file)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "%Warning" not in proc.stderr and "%Error" not in proc.stderr, proc.stderr[-3000:]


def test_verilator_lint_catches_problems_without_waivers(verilog_file):
    # the waiver file is doing real work: without it -Wall reports Amaranth's patterns
    ensure_verilator_on_path()
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(verilog_file)],
                          capture_output=True, text=True)
    assert proc.returncode != 0


def test_iverilog_2012(verilog_file, tmp_path):
    assert shutil.which("iverilog"), "iverilog not installed (scripts/test installs it)"
    proc = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "a.out"),
                           str(verilog_file)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr
