"""The `rsaccel` command line: generate, errors, version."""

import json
import subprocess
import sys

import pytest

from rsaccel import __version__
from rsaccel.cli import main


def test_generate_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "nested" / "b"
    assert main(["generate", "--preset", "tiny", "--set", "rows=2", "-o", str(a)]) == 0
    assert main(["generate", "--preset", "tiny", "--set", "rows=2", "-o", str(b)]) == 0
    for name in ("rsaccel.v", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    text = (a / "rsaccel.v").read_text()
    assert "module rsaccel(" in text
    assert str(tmp_path) not in text and "/work" not in text


def test_manifest_contents(tmp_path):
    assert main(["generate", "--preset", "tiny", "--set", "zero_gating=false", "--block", "pe",
                 "--name", "my_pe", "-o", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["top"] == "my_pe"
    assert manifest["config"]["zero_gating"] is False
    assert manifest["config"]["rows"] == 3
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["ifmap__payload"] == {"name": "ifmap__payload", "direction": "input",
                                       "width": 16}
    assert ports["psum_out__payload"]["direction"] == "output"
    assert ports["psum_out__ready"]["direction"] == "input"
    assert ports["counters"]["width"] == 8 * 32
    assert (tmp_path / "my_pe.v").exists()


@pytest.mark.parametrize("argv, message", [
    (["--preset", "huge"], "Unknown preset 'huge'"),
    (["--set", "rows=0"], "'rows' must be an integer in [1, 64], not 0"),
    (["--set", "rows=abc"], "'rows' must be an integer in [1, 64], not 'abc'"),
    (["--set", "colz=3"], "Unknown config field 'colz'"),
    (["--set", "acc_width=20"], "'acc_width' must be at least 2 * data_width = 32"),
    (["--name", "1bad"], "Top module name must be an ASCII Verilog identifier"),
    (["--name", "_acc"], "starts with a letter"),
    (["--name", "module"], "not a keyword"),
    (["--set", "rows"], "expected FIELD=VALUE, not 'rows'"),
    (["--block", "gpu"], "invalid choice: 'gpu'"),
])
def test_generate_errors(tmp_path, capsys, argv, message):
    assert main(["generate", "-o", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rsaccel", "generate", "--preset", "nope",
                           "-o", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("rsaccel: error: Unknown preset 'nope'")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rsaccel {__version__}"


def test_accelerator_manifest(tmp_path):
    assert main(["generate", "--preset", "tiny", "-o", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["s_axis_tdata"] == {"name": "s_axis_tdata", "direction": "input", "width": 64}
    assert ports["m_axis_tlast"]["direction"] == "output"
    assert ports["s_axil_rdata"]["width"] == 32 and ports["irq"]["direction"] == "output"
    regs = {r["name"]: r for r in manifest["registers"]}
    assert regs["control"]["offset"] == 0 and regs["macs"]["access"] == "ro"
    assert manifest["stream_format_version"] == 8


def _layer_files(tmp_path, **overrides):
    import numpy as np
    spec = dict(N=1, C=2, M=2, H=5, W=5, R=3, S=3, stride=1, pad=1, groups=1, relu=True,
                out_shift=2)
    spec.update(overrides)
    (tmp_path / "layer.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "in.npz", ifmap=rng.integers(-99, 99, size=(1, 2, 5, 5)),
             weights=rng.integers(-99, 99, size=(2, 2, 3, 3)), bias=np.array([5, -7]))
    return spec


@pytest.mark.xdist_group("hdl-accelerator-tiny")
def test_run_layer(tmp_path, hdl_build_root, capsys, monkeypatch):
    import os
    import numpy as np
    from rsaccel.sim.golden import conv2d
    _layer_files(tmp_path)
    # relative paths, as a user types them (the simulator runs in another directory)
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--preset", "tiny", "--layer", "layer.json", "--inputs", "in.npz",
            "--out", "out.npz", "--build-dir", os.path.relpath(hdl_build_root, tmp_path),
            "--seed", "3", "--stall", "0.2"]
    assert main(argv) == 0
    with np.load(tmp_path / "in.npz") as f:
        ref = conv2d(f["ifmap"], f["weights"], f["bias"], pad=1, relu=True, out_shift=2)
    with np.load(tmp_path / "out.npz") as f:
        assert np.array_equal(f["ofmap"], ref)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["counters"]["cycles"] > 0 and report["mapping"]["e"] >= 1
    assert "PE utilisation" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (dict(layer={"R": 4}), "R=4 exceeds the array height rows=3"),
    (dict(layer={"Q": 1}), "unknown field 'Q'"),
    (dict(npz="missing_bias"), "has no array 'bias'"),
    (dict(npz="float"), "ifmap must hold integers, not float64"),
    (dict(npz="range"), "ifmap value 99999 at index (0, 0, 0, 0)"),
    (dict(npz="shape"), "weights must have shape (2, 2, 3, 3)"),
    (dict(layer_text="{nope"), "is not valid JSON"),
    (dict(layer={"out_shift": "3"}), "'out_shift' must be a non-negative integer, not '3'"),
    (dict(layer={"relu": 1}), "'relu' must be true or false, not 1"),
    (dict(npz="npy"), "is not an .npz archive"),
])
def test_run_errors(tmp_path, capsys, change, message):
    import numpy as np
    spec = _layer_files(tmp_path, **change.get("layer", {}))
    if "layer_text" in change:
        (tmp_path / "layer.json").write_text(change["layer_text"])
    with np.load(tmp_path / "in.npz") as f:
        arrays = dict(f)
    kind = change.get("npz")
    if kind == "missing_bias":
        arrays.pop("bias")
    elif kind == "float":
        arrays["ifmap"] = arrays["ifmap"].astype(float)
    elif kind == "range":
        arrays["ifmap"][0, 0, 0, 0] = 99999
    elif kind == "shape":
        arrays["weights"] = arrays["weights"][:, :, :, :2]
    np.savez(tmp_path / "in.npz", **arrays)
    if kind == "npy":   # a plain .npy array where an archive is expected
        np.save(tmp_path / "in.npz.npy", arrays["ifmap"])
        (tmp_path / "in.npz.npy").rename(tmp_path / "in.npz")
    code = main(["run", "--preset", "tiny", "--layer", str(tmp_path / "layer.json"),
                 "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.xdist_group("hdl-accelerator-icebreaker")
def test_run_layer_without_perf_counters(tmp_path, hdl_build_root, capsys, monkeypatch):
    # the iCEBreaker preset (one PE, one-entry FIFOs, no counters) under Verilator with stalls:
    # bit-exact, no counters reported (the registers read 0), the model's cycles labelled an
    # estimate (its FIFOs are shallower than the model costs exactly)
    import os
    import numpy as np
    from rsaccel import preset
    from rsaccel.gen.compiler import Layer
    from rsaccel.sim.golden import conv2d
    from rsaccel.sim.runtime import run_layer
    spec = dict(N=1, C=2, M=4, H=6, W=6, R=1, S=3, stride=1, pad=1, relu=True, out_shift=8)
    (tmp_path / "layer.json").write_text(json.dumps(spec))
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, size=(1, 2, 6, 6))
    w = rng.integers(-128, 128, size=(4, 2, 1, 3))
    b = rng.integers(-2000, 2000, size=4)
    np.savez(tmp_path / "in.npz", ifmap=x, weights=w, bias=b)
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--preset", "icebreaker", "--layer", "layer.json", "--inputs", "in.npz",
            "--out", "out.npz", "--build-dir", os.path.relpath(hdl_build_root, tmp_path),
            "--sim", "verilator-cpp", "--seed", "4", "--stall", "0.3"]
    assert main(argv) == 0
    config = preset("icebreaker")
    ref = conv2d(x, w, b, pad=1, relu=True, out_shift=8, data_width=config.data_width,
                 acc_width=config.acc_width)
    assert ((ref > 0) & (ref < 127)).sum() > ref.size // 4    # mostly neither clipped nor cut
    with np.load(tmp_path / "out.npz") as f:
        assert np.array_equal(f["ofmap"], ref)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["counters"] == {} and report["model"]["cycle_model"] == "estimate"
    assert "no performance counters" in capsys.readouterr().out
    # the same build through the runtime: the parameter register says so, the counters read 0
    result = run_layer(config, Layer(**spec), x, w, b, simulator="verilator-cpp",
                       build_root=hdl_build_root, seed=5, stall=0.3)
    assert np.array_equal(result.ofmap, ref)
    assert result.registers["param_perf_counters"] == 0
    assert result.registers["param_glb_banks"] == 1
    assert result.registers["macs"] == result.registers["cycles"] == 0
