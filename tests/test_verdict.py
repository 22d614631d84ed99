"""The paired verdict (issue 15): McNemar's exact test and its interval on the images where two models disagree."""

from __future__ import annotations

import pytest
from scipy import stats

from glit.verdict import compare, describe, paired_counts


def test_a_one_image_difference_is_no_difference_detected():
    # 359 test images, as the demo has: A gets one more right than B.
    a = [True] * 345 + [False] * 14
    b = [True] * 344 + [False] * 15
    result = compare(*paired_counts(a, b))
    assert result["difference"] == pytest.approx(100 / 359)
    assert result["verdict"] == "no difference detected"
    assert result["p_value"] == 1.0  # b = 1, c = 0: the exact test cannot reject anything
    assert result["ci95"][0] < 0 < result["ci95"][1]


def test_a_large_consistent_difference_is_better_and_the_reverse_worse():
    # 1,000 images; A alone is right on 60, B alone on 10.
    a = [True] * 60 + [False] * 10 + [True] * 800 + [False] * 130
    b = [False] * 60 + [True] * 10 + [True] * 800 + [False] * 130
    better = compare(*paired_counts(a, b))
    assert (better["only_a"], better["only_b"], better["images"]) == (60, 10, 1000)
    assert better["verdict"] == "better" and better["difference"] == pytest.approx(5.0)
    assert better["p_value"] < 1e-6 and 0 < better["ci95"][0] < 5.0 < better["ci95"][1]
    worse = compare(*paired_counts(b, a))
    assert worse["verdict"] == "worse" and worse["difference"] == pytest.approx(-5.0)
    assert worse["ci95"] == pytest.approx([-better["ci95"][1], -better["ci95"][0]])
    assert "searched is better" in describe(better, "searched", "DeiT-style")


@pytest.mark.parametrize("only_a, only_b, n", [(30, 10, 400), (7, 3, 359), (0, 12, 10000), (25, 25, 500)])
def test_the_test_and_interval_agree_with_scipy_on_known_counts(only_a, only_b, n):
    result = compare(only_a, only_b, n)
    differ = only_a + only_b
    # McNemar's exact test is the two-sided sign test on the disagreements: 2 P(X <= min(b, c)), X ~ Bin(b + c, 1/2).
    assert result["p_value"] == pytest.approx(min(1.0, 2 * stats.binom.cdf(min(only_a, only_b), differ, 0.5)))
    # Clopper-Pearson bounds of b / (b + c) from the beta quantiles, mapped onto the difference in points.
    low = stats.beta.ppf(0.025, only_a, differ - only_a + 1) if only_a else 0.0
    high = stats.beta.ppf(0.975, only_a + 1, differ - only_a) if only_a < differ else 1.0
    assert result["ci95"] == pytest.approx([100 * differ / n * (2 * q - 1) for q in (low, high)])
    assert result["ci95"][0] <= result["difference"] <= result["ci95"][1]
    significant = result["p_value"] < 0.05
    assert result["verdict"] == ("no difference detected" if not significant else
                                 "better" if only_a > only_b else "worse")


def test_no_disagreement_and_bad_input():
    assert compare(0, 0, 100) == {"difference": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0,
                                       "verdict": "no difference detected", "only_a": 0, "only_b": 0, "images": 100}
    with pytest.raises(ValueError, match="different test sets"):
        paired_counts([True, False], [True])
    with pytest.raises(ValueError, match="impossible counts"):
        compare(60, 50, 100)
