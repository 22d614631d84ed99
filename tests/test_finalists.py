"""The finalist round (glit.recipes.finalists): which candidates are finalists, a round resumed after SIGKILL ends as
an uninterrupted one, and glit run gives the random-search baseline the same round."""

from __future__ import annotations

import json
import random

import pytest

from glit.presets import space_preset
from glit.recipes.finalists import finalist_candidates
from helpers import SMALL_SUPERNET, kill_when_exists, run_glit

DEMO = space_preset("demo", 2)


def fake_search(folder, scored, answer):
    """A finished search folder: ``scored`` (arch, score) in scoring order, and its answer."""
    folder.mkdir()
    (folder / "candidates.jsonl").write_text("".join(json.dumps({"arch": a.to_dict(), "score": s}) + "\n"
                                                     for a, s in scored))
    (folder / "best.json").write_text(json.dumps(answer.to_dict()))
    (folder / "result.json").write_text(json.dumps({"score": dict((a, s) for a, s in scored)[answer]}))
    return folder


def test_the_finalists_are_the_answer_then_the_best_distinct_candidates_of_each_search(tmp_path):
    rng = random.Random(0)
    a = list(dict.fromkeys(DEMO.sample(rng) for _ in range(12)))[:8]
    one = fake_search(tmp_path / "one", [(a[0], 50), (a[1], 60), (a[2], 55), (a[1], 60), (a[3], 40)], a[0])
    got = finalist_candidates([one], 3)
    assert [f["arch"] for f in got] == [x.to_dict() for x in (a[0], a[1], a[2])]  # the incumbent kept first
    assert [f["search_score"] for f in got] == [50, 60, 55] and all(f["score"] is None for f in got)
    two = fake_search(tmp_path / "two", [(a[4], 70), (a[5], 65), (a[1], 64)], a[4])
    pooled = finalist_candidates([one, two], 5)
    assert [f["arch"] for f in pooled] == [x.to_dict() for x in (a[0], a[4], a[1], a[5], a[2])]  # interleaved
    assert [f["search"] for f in pooled] == [str(one), str(two), str(one), str(two), str(one)]
    assert len(finalist_candidates([one], 50)) == 4  # no more than the distinct candidates


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    out = tmp_path_factory.mktemp("finalists") / "sn"
    proc = run_glit("train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", "--out", out,
                    *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


ROUND = ("--generations", "2", "--set", "search.population=6", "--set", "search.parents=2", "--set",
         "search.mutations=2", "--set", "search.crossovers=2", "--finalists", "3", "--set", "search.finetune_steps=4",
         *SMALL_SUPERNET[2:4])


def test_a_round_killed_after_its_first_finalist_ends_as_an_uninterrupted_one(supernet, tmp_path):
    whole = run_glit("search", "--supernet", supernet, "--out", tmp_path / "whole", *ROUND)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "finalist round: the top 3" in whole.stdout
    expected = json.loads((tmp_path / "whole" / "finalists" / "finalists.json").read_text())
    assert len(expected["finalists"]) == 3 and expected["winner"] in expected["finalists"]
    assert expected["winner"]["score"] == max(f["score"] for f in expected["finalists"])

    cut = tmp_path / "cut"
    kill_when_exists(["search", "--supernet", supernet, "--out", cut, *ROUND], cut / "finalists" / "finalists.json")
    partial = json.loads((cut / "finalists" / "finalists.json").read_text())
    assert "winner" not in partial and partial["finalists"][0]["score"] is not None
    again = run_glit("search", "--supernet", supernet, "--out", cut, "--resume", *ROUND)
    assert again.returncode == 0, again.stderr[-3000:]
    got = json.loads((cut / "finalists" / "finalists.json").read_text())
    strip = lambda r: {**r, "finalists": [{k: v for k, v in f.items() if k not in ("search", "supernet")}  # noqa
                                          for f in r["finalists"]], "winner": r["winner"]["arch"]}
    assert strip(got) == strip(expected)
