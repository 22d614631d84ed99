"""The layout of a ``glit run`` folder, spelled once: its stage folders, its finalists and its files. ``glit run``
writes it, and the report, ``glit rank``'s supernet health, ``glit ablate`` and ``glit compare`` read it from here.
Plain Python (layer 0).

    1-supernet/          level-1 supernet             5-search[-J]/         level-2 search(es)
    2-search/            level-1 search               6-random/supernet/    random search: whole-space supernet
    2-finalists/         level 1's finalist round     6-random/search/      random search
    3-pick/pick.json     the level-1 pick             6-random/finalists/   random search's finalist round
    4-supernet[-J]/      level-2 supernet(s)          7-searched/, 8-baseline/, 9-random/   retraining (-seedS)
    5-finalists/         level 2's finalist round (search.finalists_level 2, in place of 2-finalists)
    (with search.level2_epochs 0, no 4-supernet or 6-random/supernet folders: 1-supernet serves both searches)
    10-one-level/, 10-one-level-finalists/, 11-one-level/   glit ablate --study search: one-level search, its
                         finalist round and its retraining
"""

from __future__ import annotations

from pathlib import Path

FINALISTS = ("searched", "baseline", "random")  # the three retrained models, in the order of their stages
# summary.json's paired comparisons of the searched model: (key, the other finalist, its name in a table)
COMPARISONS = (("vs_baseline", "baseline", "DeiT-style"), ("vs_random", "random", "random search"))
FINAL_DIRS = {"searched": "7-searched", "baseline": "8-baseline", "random": "9-random"}
RANDOM_DIR = "6-random"  # random search's stage: its supernet, its search and its finalist round inside
SUPERNET_DIRS = {"level1": "1-supernet", "level2": "4-supernet", "random": f"{RANDOM_DIR}/supernet"}
SEARCH_DIRS = {"level1": "2-search", "level2": "5-search", "random": f"{RANDOM_DIR}/search"}
# the finalist rounds (search.finalists): the hierarchy's at level 1, where it picks the distribution, or
# (search.finalists_level 2) after level 2, on complete architectures; and random search's
ROUND_DIRS = {"searched": "2-finalists", "level2": "5-finalists", "random": f"{RANDOM_DIR}/finalists"}
ROUND_FILE = "finalists.json"  # a finalist round's state and answer (glit.recipes.finalists)
PICK_DIR = "3-pick"
# stages a run may leave out (search.finalists, search.finalists_level; search.level2_epochs 0: the two supernets)
OPTIONAL_DIRS = (PICK_DIR, *ROUND_DIRS.values(), SUPERNET_DIRS["level2"], SUPERNET_DIRS["random"])
ONE_LEVEL_SEARCH, ONE_LEVEL_FINAL = "10-one-level", "11-one-level"
ONE_LEVEL_ROUND = "10-one-level-finalists"  # its finalist round, as the other searches get (search.finalists)
STAGES = (("1-supernet", "level-1 supernet"), ("2-search", "level-1 search"),
          ("2-finalists", "level 1's finalist round"), ("3-pick", "pick the distribution"),
          ("4-supernet", "level-2 supernet"), ("5-search", "level-2 search"),
          ("5-finalists", "level 2's finalist round"),
          ("6-random/supernet", "random search: whole-space supernet"), ("6-random/search", "random search"),
          ("6-random/finalists", "random search's finalist round"),
          ("7-searched", "retrain the searched architecture"), ("8-baseline", "train the DeiT-style baseline"),
          ("9-random", "retrain the random-search winner"))

# the run's own files
RUN_JSON, SUMMARY, TIMES, REPORT, HEALTH = "run.json", "summary.json", "times.json", "report.html", "health.json"
STAGE = "stage.json"  # in every stage folder: the arguments its command was given (glit.folder)


def ablation_file(study: str) -> str:
    """``glit ablate --study STUDY``'s table in the run folder (its page: the same name, ``.html``)."""
    return f"ablation-{study}.json"


def level2_dirs(j: int) -> tuple[str, str]:
    """The supernet and search folders of the j-th level-2 distribution (0: the level-1 winner's)."""
    suffix = "" if j == 0 else f"-{j + 1}"
    return SUPERNET_DIRS["level2"] + suffix, SEARCH_DIRS["level2"] + suffix


def seed_folders(base: Path, seeds: list[int]) -> list[Path]:
    """``base`` for the first seed, ``base-seed<S>`` for each other seed S."""
    return [base if k == 0 else base.with_name(f"{base.name}-seed{seed}") for k, seed in enumerate(seeds)]


def finalist_folders(out: Path, name: str, seeds: list[int]) -> list[Path]:
    """``7-searched`` for the first seed, ``7-searched-seed1`` ... for the others (and alike for the baselines)."""
    return seed_folders(Path(out) / FINAL_DIRS[name], seeds)
