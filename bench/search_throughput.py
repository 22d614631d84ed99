"""Cost of scoring one search candidate, against plain inference over the same images, side by side in one run.

Scoring = BatchNorm recalibration on ``--bn-batches`` training batches + top-1 on the search split, with inherited
weights. Two ways, both timed here:
- ``extract``: copy the path into a standalone model once, then run it (what ``glit.scoring.supernet.score`` does);
- ``path``: run the path through the supernet, which re-slices the shared weights on every batch.
Plain inference = the already-extracted subnet over the same number of images, in eval mode.

    python bench/search_throughput.py                 # cifar space, 5 archs
    python bench/search_throughput.py --search-images 2000 --bn-batches 10 --batch 256

Goal: scoring / plain inference <= 1.3. It also prints candidates per minute at these settings on the cifar preset.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

import glit
from glit.scoring.supernet import score
from glit.train.bn import recalibrate_bn


class Held:
    """Batches held in memory, as ``glit.scoring.supernet.Batches`` holds them."""

    def __init__(self, batches, device):
        self.cached, self.device = batches, device

    def __iter__(self):
        return iter(self.cached)


@torch.no_grad()
def score_through_path(supernet, arch, calib, search) -> float:
    recalibrate_bn(supernet, arch, (x for x, _ in calib))
    supernet.eval()
    correct = n = 0
    for x, y in search:
        correct += (supernet(x, arch).argmax(-1) == y).sum().item()
        n += y.numel()
    return 100.0 * correct / n


@torch.no_grad()
def plain_inference(model, batches) -> None:
    model.eval()
    for x, _ in batches:
        model(x)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bn-batches", type=int, default=4)
    parser.add_argument("--search-images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    space = glit.space_preset("cifar", 2)
    supernet = glit.Supernet(space)
    img = space.family.img_size
    calib = Held([(torch.randn(args.batch, 3, img, img), None) for _ in range(args.bn_batches)], torch.device("cpu"))
    n_search = args.search_images
    search = Held([(torch.randn(min(args.batch, n_search - i), 3, img, img),
                    torch.randint(0, 10, (min(args.batch, n_search - i),))) for i in range(0, n_search, args.batch)],
                  torch.device("cpu"))
    images = args.bn_batches * args.batch + n_search
    everything = Held(list(calib) + list(search), torch.device("cpu"))
    rng = random.Random(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cifar level-2 space; per candidate: "
          f"{args.bn_batches} x {args.batch} calibration + {n_search} search images = {images} images")
    print(f"{'arch':>4} {'MACs':>8} {'extract s':>10} {'path s':>8} {'plain s':>8} {'extract/plain':>14} "
          f"{'path/plain':>11}")
    ratios_extract, ratios_path, per_candidate = [], [], []
    for i in range(args.archs):
        arch = space.sample(rng)
        subnet = supernet.extract(arch)
        assert score(supernet, arch, calib, search) == score_through_path(supernet, arch, calib, search)
        t_extract, t_path, t_plain = [], [], []
        for _ in range(args.repeats):  # interleaved
            t_extract.append(timed(score, supernet, arch, calib, search))
            t_path.append(timed(score_through_path, supernet, arch, calib, search))
            t_plain.append(timed(plain_inference, subnet, everything))
        e, p, q = (statistics.median(t) for t in (t_extract, t_path, t_plain))
        ratios_extract.append(e / q)
        ratios_path.append(p / q)
        per_candidate.append(e)
        print(f"{i:>4} {glit.cost(arch).macs / 1e6:>7.1f}M {e:>10.3f} {p:>8.3f} {q:>8.3f} {e / q:>14.3f} "
              f"{p / q:>11.3f}", flush=True)
    print(f"median scoring/plain-inference ratio: extract {statistics.median(ratios_extract):.3f}, "
          f"path {statistics.median(ratios_path):.3f} (goal <= 1.3)")
    print(f"candidates per minute (extract): {60 / statistics.median(per_candidate):.1f}")


if __name__ == "__main__":
    main()
