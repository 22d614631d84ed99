"""Is one classifier better than another on the same test images? A paired verdict with its uncertainty.

Two models scored on the same n test images differ only on the images that exactly one of them gets right: ``b``
that A gets right and B wrong, ``c`` the reverse. McNemar's exact test asks whether ``b`` and ``c`` could be two draws
of one coin: under "no difference", ``b`` is Binomial(b + c, 1/2). The difference in top-1 is ``(b - c) / n``; its
95% interval is the exact (Clopper-Pearson) interval of ``b / (b + c)`` mapped onto that scale, conditional on the
number of disagreements, the same conditioning as the test (scipy's ``binomtest`` does both). A difference of one or
two images on a few hundred is then "no difference detected", as it should be.

No torch here: the inputs are per-image correctness lists (``predictions.json`` of a retraining).
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats

ALPHA = 0.05
VERDICTS = ("better", "worse", "no difference detected")


def paired_counts(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> tuple[int, int, int]:
    """``(b, c, n)``: images only A gets right, images only B gets right, images in all."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"the two models were scored on different test sets ({len(a_correct)} vs "
                         f"{len(b_correct)} images)")
    only_a = sum(1 for x, y in zip(a_correct, b_correct) if x and not y)
    only_b = sum(1 for x, y in zip(a_correct, b_correct) if y and not x)
    return only_a, only_b, len(a_correct)


def compare(only_a: int, only_b: int, n: int, alpha: float = ALPHA) -> dict:
    """The verdict on A against B from the paired counts: ``difference`` (points of top-1, A minus B), ``ci95``
    (two numbers, points), ``p_value`` (McNemar's exact, two-sided), ``verdict`` (``better``: A is better;
    ``worse``; ``no difference detected``: at this test-set size), and the counts."""
    if n <= 0 or only_a < 0 or only_b < 0 or only_a + only_b > n:
        raise ValueError(f"impossible counts: {only_a} and {only_b} disagreements on {n} images")
    differ = only_a + only_b
    difference = 100.0 * (only_a - only_b) / n
    if differ == 0:
        low, high, p_value = 0.0, 0.0, 1.0
    else:
        test = stats.binomtest(only_a, differ, 0.5)
        ci = test.proportion_ci(confidence_level=1 - alpha, method="exact")
        low, high = (100.0 * differ / n * (2 * q - 1) for q in (ci.low, ci.high))
        p_value = float(test.pvalue)
    significant = p_value < alpha and not low <= 0.0 <= high
    verdict = VERDICTS[2] if not significant else VERDICTS[0] if difference > 0 else VERDICTS[1]
    return {"difference": difference, "ci95": [low, high], "p_value": p_value, "verdict": verdict,
            "only_a": only_a, "only_b": only_b, "images": n}


def describe(result: dict, a: str, b: str) -> str:
    """One line: ``searched vs DeiT-style: +2.51 points (95% CI +0.8 to +4.2, p = 0.004): better``."""
    low, high = result["ci95"]
    verdict = result["verdict"]
    said = {"better": f"{a} is better", "worse": f"{a} is worse",
            "no difference detected": f"no difference detected at {result['images']:,} test images"}[verdict]
    return (f"{a} vs {b}: {result['difference']:+.2f} points (95% CI {low:+.2f} to {high:+.2f}, "
            f"p = {result['p_value']:.3g}; {result['only_a']} images only {a} gets right, {result['only_b']} only "
            f"{b}): {said}")
