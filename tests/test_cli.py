"""The command line: real subprocesses, real exit codes."""

import json
import re
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


def test_version():
    from glit.version import __version__

    out = glit("--version")
    assert out.returncode == 0 and out.stdout.startswith(f"glit {__version__}")


def test_a_reader_that_goes_away_ends_the_output_without_a_traceback():
    """``glit space demo | head -1``: the pipe closes before glit writes; glit stops quietly with exit code 0."""
    proc = subprocess.Popen([sys.executable, "-m", "glit", "space", "demo", "--level", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before glit has imported torch and printed anything
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_glit_report_renders_any_run_folder_and_refuses_others(tmp_path):
    from test_report import make_run

    run = make_run(tmp_path)
    (run / "summary.json").unlink()  # a run still in progress
    (run / "report.html").unlink(missing_ok=True)
    out = glit("report", str(run))
    assert out.returncode == 0, out.stderr
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "still in progress" in page and out.stdout.strip() == f"report: {run / 'report.html'}"
    for folder, needle in ((tmp_path / "nothing", "no such folder"), (tmp_path, "not a glit run folder")):
        bad = glit("report", str(folder))
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


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
    """``glit --help`` lists every command with a line of its own, and each command's --help describes it."""
    from glit.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    out = glit("--help")
    assert out.returncode == 0
    for action in commands._choices_actions:
        assert action.help and re.search(rf"^\s+{re.escape(action.dest)}\s+\S", out.stdout, re.M), action.dest
    for name in commands.choices:
        page = glit(name, "--help")
        assert page.returncode == 0 and page.stdout.startswith(f"usage: glit {name}"), name
        assert len(page.stdout.split("\n\n")[1].strip()) > 20, name  # a description, not the usage alone
