"""The command line: real subprocesses, real exit codes."""

import json
import subprocess
import sys

import pytest


def glit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "glit", *args], capture_output=True, text=True, cwd=cwd)


def test_profile_released_glit_tiny_matches_spec():
    out = glit("profile", "--arch", "glit-tiny-released", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["params"] == 7264456
    assert abs(data["macs"] / 1472.9e6 - 1) < 1e-3
    assert abs(data["macs_glit"] / 1332.5e6 - 1) < 1e-3
    assert len(data["blocks"]) == 12


def test_profile_deit_tiny_matches_spec():
    data = json.loads(glit("profile", "--arch", "deit-tiny", "--json").stdout)
    assert data["params"] == 5717416
    assert abs(data["macs"] / 1253.7e6 - 1) < 1e-3


def test_profile_reads_an_arch_file_and_prints_a_table(tmp_path):
    from glit.presets import arch_preset

    path = tmp_path / "arch.json"
    path.write_text(arch_preset("glit-tiny-released").to_json())
    out = glit("profile", "--arch", str(path))
    assert out.returncode == 0, out.stderr
    assert "params 7,264,456" in out.stdout


def test_space_reports_size_and_extremes():
    out = glit("space", "tiny", "--level", "1", "--json")
    data = json.loads(out.stdout)
    assert data["size"] == 4**12
    assert data["smallest_by_macs"]["macs"] < data["largest_by_macs"]["macs"]
    text = glit("space", "demo", "--level", "2").stdout
    assert "distinct architectures" in text and "largest by macs" in text


BAD_BLOCK = {"num_global_heads": 1, "qkv_ratio": 1, "mlp_ratio": 4, "conv_ratio": 1, "kernel_size": 5}
FAMILY = {"img_size": 8, "patch_size": 2, "embed_dim": 48, "num_heads": 3, "depth": 2, "num_classes": 10}


@pytest.mark.parametrize("text, message", [
    ('{"family": {', "malformed JSON"),
    (json.dumps({"family": FAMILY, "blocks": [{**BAD_BLOCK, "wings": 2}] * 2}), "unknown key 'wings'"),
    (json.dumps({"family": FAMILY, "blocks": [{**BAD_BLOCK, "num_global_heads": 5}] * 2}), "num_global_heads"),
    (json.dumps({"family": FAMILY, "blocks": [BAD_BLOCK] * 3}), "3 blocks given"),
    (json.dumps({"family": FAMILY, "blocks": [{**BAD_BLOCK, "kernel_size": 4}] * 2}), "kernel_size"),
])
def test_bad_arch_file_is_one_line_and_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    out = glit("profile", "--arch", str(path))
    assert out.returncode == 2
    assert message in out.stderr and str(path) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (["space", "huge"], "unknown space preset 'huge'"),
    (["profile", "--arch", "deit-huge"], "unknown architecture 'deit-huge'"),
    (["profile", "--arch", "missing.json"], "missing.json"),
])
def test_unknown_names_exit_2(args, message):
    out = glit(*args)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_documents_every_command():
    out = glit("--help")
    assert out.returncode == 0
    for command in ("space", "profile"):
        assert command in out.stdout
