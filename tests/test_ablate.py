"""``glit ablate --study locality`` end to end on the demo preset with tiny settings, and its bad input. (The search
study runs on test_run's finished run, whose stages it reuses.)"""

import dataclasses
import json
import random

from glit.genes import LOCAL_OPS
from glit.presets import space_preset
from glit.recipes.ablate import default_locality_arch, with_local_op
from helpers import assert_one_line_error, run_glit

SHORT = ("--set", "train.epochs=1", "--set", "train.batch_size=64", "--set", "data.search_size=200")


def test_locality_retrains_one_architecture_with_each_local_operator(tmp_path):
    out = tmp_path / "loc"
    proc = run_glit("ablate", "demo", "--study", "locality", "--out", out, *SHORT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((out / "ablation-locality.json").read_text())
    names = [r["name"] for r in table["rows"]]
    assert names == [*LOCAL_OPS, "all-global (DeiT-style)"]
    base = default_locality_arch("demo")
    for row in table["rows"][:len(LOCAL_OPS)]:
        blocks = row["arch"]["blocks"]
        assert {b["local_op"] for b in blocks} == {row["name"]}  # every local part runs the operator
        assert [b["num_global_heads"] for b in blocks] == [b.num_global_heads for b in base.blocks]
        assert (out / f"locality-{row['name']}" / "result.json").is_file()
    assert all(b.num_global_heads == 1 for b in base.blocks)  # H/3 of the demo's 3 heads, in every block
    # the all-global row is where glit run retrains its DeiT-style finalist, so a run in this folder shares it
    assert table["rows"][-1]["folders"] == [str(out / "8-baseline")]
    assert (out / "8-baseline" / "result.json").is_file()
    assert "ablation: locality (demo, 1 seed" in proc.stdout
    again = run_glit("ablate", "demo", "--study", "locality", "--out", out, *SHORT, timeout=600)
    assert again.returncode == 0 and "train epoch" not in again.stdout  # finished trainings are read back
    assert json.loads((out / "ablation-locality.json").read_text())["rows"] == table["rows"]


def test_with_local_op_changes_only_the_local_parts():
    space = space_preset("demo", 2)
    arch = space.fix(num_global_heads=[3, 0, 1, 2]).sample(random.Random(0))
    changed = with_local_op(arch, "window_attn")
    assert [b.local_op for b in changed.blocks] == [None, "window_attn", "window_attn", "window_attn"]
    assert changed.blocks[0] == arch.blocks[0]  # an all-global block has no local part to change
    for old, new in zip(arch.blocks, changed.blocks):
        assert dataclasses.replace(new, local_op=old.local_op) == old  # nothing else changes


def test_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run_glit("ablate", "demo", "--study", "locality", "--arch", "deit-demo", "--out",
                                   tmp_path / "a", *SHORT), "no local heads")
    assert_one_line_error(run_glit("ablate", "demo", "--study", "search", "--arch", "deit-demo", "--out",
                                   tmp_path / "b", *SHORT), "--arch is for --study locality")
    assert_one_line_error(run_glit("ablate", "demo", "--study", "locality", "--seeds", "0", "--out",
                                   tmp_path / "c", *SHORT), "--seeds must be at least 1")
