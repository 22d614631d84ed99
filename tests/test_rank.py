"""``glit rank``: the figures against scipy and against hand-made truths whose answer is known, and architectures
outside the supernet's space skipped, never scored."""

import dataclasses
import json
import random

import pytest
from scipy import stats

from glit import Arch, SearchSpace, cost
from glit.errors import GlitError
from glit.health.metrics import Truth, bias_metrics, group, is_mix, local_share, noise_ceiling, rank_metrics, read_truth
from glit.presets import level1_part
from helpers import SMALL_SUPERNET, assert_one_line_error, run_glit


def test_rank_metrics_on_known_orders():
    scores = [6, 5, 4, 3, 2, 1, 0]
    same = rank_metrics(scores, [60, 50, 40, 30, 20, 10, 0])
    assert (same["kendall_tau"], same["spearman_rho"], same["precision_at_5"], same["regret"]) == (1, 1, 1, 0)
    rev = rank_metrics(scores, [0, 10, 20, 30, 40, 50, 60])
    assert (rev["kendall_tau"], rev["spearman_rho"]) == (-1, -1)
    assert rev["precision_at_5"] == 3 / 5  # top 5 by score: items 0-4; by truth: items 2-6
    assert rev["regret"] == 0 - 60  # the favourite (item 0) is the true worst
    swap = rank_metrics(scores, [50, 60, 40, 30, 20, 10, 0])  # the two best swapped
    assert swap["precision_at_5"] == 1 and swap["regret"] == -10
    assert swap["kendall_tau"] == pytest.approx(1 - 2 * 1 / 21)  # one discordant pair of 21


def test_rank_metrics_equal_scipy_and_ties_break_by_order():
    rng = random.Random(0)
    scores = [round(rng.uniform(30, 50), 1) for _ in range(20)]
    truth = [s + rng.gauss(0, 3) for s in scores]
    m = rank_metrics(scores, truth)
    assert m["kendall_tau"] == pytest.approx(stats.kendalltau(scores, truth).statistic)
    assert m["spearman_rho"] == pytest.approx(stats.spearmanr(scores, truth).statistic)
    tied = rank_metrics([1, 1, 0, 0, 0, 0], [5, 9, 1, 2, 3, 4])
    assert tied["regret"] == 5 - 9  # equal scores: the first in file order is the favourite
    few = rank_metrics([1, 2], [3, 4])
    assert few["kendall_tau"] is None and few["precision_at_5"] is None and few["regret"] == 0


def test_local_share_tau_among_mixes_and_local_bias():
    from glit.presets import deit, space_preset

    space = space_preset("cifar", 2)
    fam = space.family
    rng = random.Random(3)
    archs = [deit(fam), level1_part("cifar", space).fix(num_global_heads=0).sample(rng)]
    archs += [a for a in (space.sample(rng) for _ in range(200)) if is_mix(a)][:10]
    assert local_share(archs[0]) == 0 and local_share(archs[1]) == 1  # all local heads at conv_ratio 1
    b = archs[2].blocks[0]
    one = Arch(fam, (b,) * fam.depth)
    assert local_share(one) == pytest.approx((3 - b.num_global_heads) / 3 * (b.conv_ratio or 0))
    assert not is_mix(archs[0]) and not is_mix(archs[1]) and all(is_mix(a) for a in archs[2:])
    share = [local_share(a) for a in archs]
    truth = [50 + 2 * s + 0.01 * i for i, s in enumerate(share)]
    fair = bias_metrics(archs, truth, truth)  # scores that follow the truth exactly
    assert fair["local_bias"] == 0 and fair["kendall_tau_mixes"] == pytest.approx(1) and fair["n_mixes"] == 10
    against = bias_metrics(archs, [-t for t in truth], truth)  # scores that rate local computation backwards
    tau = stats.kendalltau(truth, share).statistic
    assert against["local_bias"] == pytest.approx(-2 * tau) and against["kendall_tau_mixes"] == pytest.approx(-1)
    mixes = [i for i in range(len(archs)) if is_mix(archs[i])]
    noisy = [t + random.Random(i).gauss(0, 3) for i, t in enumerate(truth)]
    assert bias_metrics(archs, noisy, truth)["kendall_tau_mixes"] == pytest.approx(
        stats.kendalltau([noisy[i] for i in mixes], [truth[i] for i in mixes]).statistic)


def test_the_selection_test_is_exact_over_all_subsets_and_its_interval_holds_it():
    import itertools
    import statistics

    from glit.health.metrics import selection

    rng = random.Random(1)
    truth = [rng.uniform(50, 60) for _ in range(11)]
    scores = [t + rng.gauss(0, 2) for t in truth]
    picks, bests, means = [], [], []
    for subset in itertools.combinations(range(11), 4):  # every subset, by brute force
        pick = max(subset, key=lambda i: (scores[i], -i))
        picks.append(truth[pick])
        bests.append(max(truth[i] for i in subset))
        means.append(statistics.fmean(truth[i] for i in subset))
    r = selection(scores, truth, 4)
    assert r["gain"] == pytest.approx(statistics.fmean(picks) - statistics.fmean(means))
    assert r["regret"] == pytest.approx(statistics.fmean(picks) - statistics.fmean(bests))
    assert r["gain_ci95"][0] <= r["gain"] <= r["gain_ci95"][1] and r["regret"] <= 0
    perfect = selection(truth, truth, 4)
    assert perfect["regret"] == 0 and perfect["gain"] > r["gain"]
    backwards = selection([-t for t in truth], truth, 4)
    assert backwards["gain"] < 0 and backwards["gain_ci95"][1] < 0
    with pytest.raises(GlitError, match="subsets of 2 to 11"):
        selection(scores, truth, 12)


def test_noise_ceiling_and_grouping(toy_space):
    archs = [toy_space.sample(random.Random(i)) for i in range(5)]
    seed0, seed1 = [50, 52, 48, 60, 55], [51, 49, 47, 61, 56]
    rows = [{"arch": a.to_dict(), "seed": s, "top1": t} for s, tops in ((0, seed0), (1, seed1))
            for a, t in zip(archs, tops)]
    rows.append({"arch": toy_space.sample(random.Random(9)).to_dict(), "seed": 0, "top1": 40})  # one seed only
    truths = group(rows)
    assert len(truths) == 6 and truths[0].mean == 50.5 and truths[5].top1 == {0: 40}
    ceiling = noise_ceiling(truths)
    assert ceiling["noise_ceiling_n"] == 5
    assert ceiling["noise_ceiling_tau"] == pytest.approx(stats.kendalltau(seed0, seed1).statistic)
    with pytest.raises(GlitError, match="seed 0 appears twice"):
        group(rows + rows[:1])


def test_read_truth_names_the_bad_line(tmp_path):
    file = tmp_path / "truth.jsonl"
    file.write_text('{"arch": {}, "seed": 0, "top1": 1}\n{"arch": \n')
    with pytest.raises(GlitError, match="line 2: malformed JSON"):
        read_truth(file)
    file.write_text('{"arch": {}, "top1": 1}\n')
    with pytest.raises(GlitError, match="line 1: missing key 'seed'"):
        read_truth(file)


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    """A demo supernet over the whole space, one epoch; and its space."""
    out = tmp_path_factory.mktemp("rank") / "sn"
    proc = run_glit("train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", "--out", out,
                    *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, SearchSpace.from_dict(json.loads((out / "space.json").read_text()))


def rank_json(sn, truth, *args):
    proc = run_glit("rank", "--supernet", sn, "--truth", truth, "--json", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def write_truth(path, pairs):
    """pairs: (arch, seed, top1)."""
    path.write_text("".join(json.dumps({"arch": a.to_dict(), "seed": s, "top1": t}) + "\n" for a, s, t in pairs))
    return path


def test_rank_scores_what_the_space_holds_and_matches_scipy(supernet, tmp_path):
    sn, space = supernet
    rng = random.Random(0)
    inside = list(dict.fromkeys(space.sample(rng) for _ in range(12)))
    foreign = dataclasses.replace(inside[0], family=dataclasses.replace(space.family, num_classes=5))
    pairs = [(a, 0, 40 + i) for i, a in enumerate(inside)] + [(a, 1, 41 + i) for i, a in enumerate(inside[:6])]
    truth = write_truth(tmp_path / "truth.jsonl", pairs + [(foreign, 0, 99.0)])
    r = rank_json(sn, truth)
    assert r["n"] == len(inside) and r["skipped"] == 1
    assert [Arch.from_dict(p["arch"]) for p in r["pairs"]] == inside  # the foreign one was never scored
    scores, truths = [p["score"] for p in r["pairs"]], [p["truth_top1"] for p in r["pairs"]]
    assert truths[:6] == [40.5 + i for i in range(6)] and truths[6] == 46  # the mean over seeds
    assert r["kendall_tau"] == pytest.approx(stats.kendalltau(scores, truths).statistic)
    assert r["spearman_rho"] == pytest.approx(stats.spearmanr(scores, truths).statistic)
    assert r["noise_ceiling_n"] == 6 and r["noise_ceiling_tau"] == pytest.approx(1.0)
    macs = [cost(Arch.from_dict(p["arch"])).macs for p in r["pairs"]]
    assert r["macs_kendall_tau"] == pytest.approx(stats.kendalltau(macs, truths).statistic)
    assert {"n", "kendall_tau", "spearman_rho", "precision_at_5", "regret", "noise_ceiling_tau", "pairs"} <= r.keys()

    # A hand-made truth whose answer is known: the supernet's own order, then its reverse.
    distinct = list({p["score"]: Arch.from_dict(p["arch"]) for p in r["pairs"]}.items())
    assert len(distinct) >= 6, "the tiny supernet scores too many candidates alike"
    distinct.sort(key=lambda x: -x[0])  # best score first
    archs = [a for _, a in distinct][:6]
    agree = rank_json(sn, write_truth(tmp_path / "agree.jsonl", [(a, 0, 90 - i) for i, a in enumerate(archs)]))
    assert agree["kendall_tau"] == pytest.approx(1) and (agree["precision_at_5"], agree["regret"]) == (1, 0)
    flip = rank_json(sn, write_truth(tmp_path / "flip.jsonl", [(a, 0, 80 + i) for i, a in enumerate(archs)]))
    assert flip["kendall_tau"] == pytest.approx(-1) and flip["precision_at_5"] == 4 / 5
    assert flip["regret"] == 80 - 85

    text = run_glit("rank", "--supernet", sn, "--truth", truth)
    assert text.returncode == 0 and "1 outside the space skipped" in text.stdout and "Kendall tau" in text.stdout


def test_rank_level1_scores_only_level1_members(supernet, tmp_path):
    sn, space = supernet
    level1 = level1_part("demo", space)
    members = [level1.sample(random.Random(i)) for i in range(4)]
    others = [a for a in (space.sample(random.Random(100 + i)) for i in range(6)) if not level1.contains(a)]
    truth = write_truth(tmp_path / "t.jsonl", [(a, 0, 50.0 + i) for i, a in enumerate(members + others)])
    r = rank_json(sn, truth, "--level1")
    assert r["n"] == len(set(members)) and r["skipped"] == len(others)
    assert all(level1.contains(Arch.from_dict(p["arch"])) for p in r["pairs"])


def test_rank_bad_input_is_a_one_line_error(supernet, tmp_path):
    sn, space = supernet
    arch = space.sample(random.Random(0))
    foreign = dataclasses.replace(arch, family=dataclasses.replace(space.family, num_classes=5))
    none_inside = write_truth(tmp_path / "none.jsonl", [(foreign, 0, 50.0)])
    assert_one_line_error(run_glit("rank", "--supernet", sn, "--truth", none_inside), "none of its 1")
    other_data = tmp_path / "other.jsonl"
    other_data.write_text(json.dumps({"arch": arch.to_dict(), "seed": 0, "top1": 50.0, "data": "0123456789abcdef"}))
    assert_one_line_error(run_glit("rank", "--supernet", sn, "--truth", other_data), "other data")
    assert_one_line_error(run_glit("rank", "--supernet", sn, "--truth", tmp_path / "missing.jsonl"), "missing.jsonl")
    assert Truth(arch, {0: 1.0, 1: 3.0}).mean == 2.0
