"""The ``glit`` command line. Thin: parse arguments, load configs, call library functions.

Exit codes: 0 success, 2 bad input (a one-line message, no traceback), 1 internal error.

Each command imports what it uses inside its function: ``glit --help``, ``glit space`` and ``glit profile`` start
without loading torch. (Those are the package's only imports inside functions, with ``glit.Supernet``'s lazy
attribute and matplotlib's in ``glit.report.plots``; the modules import one way, space -> cost -> presets -> config
-> recipes, with no cycle.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from glit.config import EVALUATORS, STRATEGIES
from glit.cost import CONVENTIONS
from glit.errors import GlitError
from glit.files import dumps
from glit.genes import LOCAL_OPS
from glit.presets import LEVEL2_SPACES
from glit.units import format_count


def _fmt_value(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def cmd_space(args) -> None:
    from glit.cost import cost, extremes
    from glit.genes import GENE_NAMES
    from glit.presets import space_preset

    space = space_preset(args.preset, level=args.level, level2_space=args.space)
    fam = space.family
    rows = []
    for key in ("macs", "params"):
        lo, hi = extremes(space, key)
        rows += [(f"smallest by {key}", cost(lo)), (f"largest by {key}", cost(hi))]
    if args.json:
        print(dumps({
            "preset": args.preset, "level": args.level, "family": fam.to_dict(), "size": space.size(),
            "gene_combinations": space.num_gene_combinations(), "space": space.to_dict(),
            **{name.replace(" ", "_"): {"params": c.params, "macs": c.macs} for name, c in rows},
        }, indent=2))
        return
    print(f"space {args.preset!r}, level {args.level}: {fam.img_size} px, patch {fam.patch_size}, "
          f"D {fam.embed_dim}, H {fam.num_heads}, depth {fam.depth}, {fam.num_classes} classes, "
          f"{fam.num_tokens} tokens")
    groups: dict[str, list[int]] = {}
    for i, block in enumerate(space.blocks):
        text = ", ".join(f"{g} {{{', '.join(map(_fmt_value, getattr(block, g)))}}}" for g in GENE_NAMES)
        groups.setdefault(text, []).append(i)
    for text, idx in groups.items():
        print(f"  {'every block' if len(idx) == fam.depth else 'blocks ' + str(idx)}: {text}")
    if space.pins:
        print("  pinned: " + ", ".join(f"{gene} {value:g} in {kind} blocks" for kind, gene, value in space.pins))
    print(f"  distinct architectures: {space.size():.4g} ({space.size()})")
    print(f"  gene combinations (the paper's count): {space.num_gene_combinations():.4g}")
    for name, c in rows:
        print(f"  {name:<20} params {c.params:>12,}  MACs {format_count(c.macs)}")


def cmd_profile(args) -> None:
    from glit.cost import cost
    from glit.genes import GENES
    from glit.presets import load_arch

    arch = load_arch(args.arch)
    exact, glit_ = cost(arch, "exact"), cost(arch, "glit")
    if args.json:
        print(dumps({
            "params": exact.params, "macs": exact.macs, "macs_glit": glit_.macs,
            "stem": {"params": exact.stem.params, "macs": exact.stem.macs},
            "head": {"params": exact.head.params, "macs": exact.head.macs},
            "blocks": [{**{g: getattr(genes, g) for g in genes.__dataclass_fields__},
                        "params": b.total.params, "macs": b.total.macs, "macs_glit": bg.total.macs}
                       for genes, b, bg in zip(arch.blocks, exact.blocks, glit_.blocks)],
            "arch": arch.to_dict(),
        }, indent=2))
        return
    fam = arch.family
    print(f"{args.arch}: {fam.img_size} px, patch {fam.patch_size}, D {fam.embed_dim}, H {fam.num_heads}, "
          f"depth {fam.depth}, {fam.num_classes} classes, {fam.num_tokens} tokens")
    details = GENES[1:]  # a column per gene, headed by its short name (glit.genes)
    width = {g.name: max(5, len(g.short), *(len(_fmt_value(getattr(b, g.name) or "-")) for b in arch.blocks))
             for g in details}
    print(f"{'block':>5} {'G/L':>5} " + " ".join(f"{g.short:>{width[g.name]}}" for g in details)
          + f" {'params':>12} {'MACs':>12} {'MACs glit':>12}")
    for i, (genes, b, bg) in enumerate(zip(arch.blocks, exact.blocks, glit_.blocks)):
        gl = f"{genes.num_global_heads}/{fam.num_heads - genes.num_global_heads}"
        cells = " ".join(f"{_fmt_value(getattr(genes, g.name) or '-'):>{width[g.name]}}" for g in details)
        print(f"{i:>5} {gl:>5} {cells} {b.total.params:>12,} {format_count(b.total.macs):>12} "
              f"{format_count(bg.total.macs):>12}")
    pad = 6 + sum(w + 1 for w in width.values()) - 1
    print(f"{'stem':>5} {'':>{pad}} {exact.stem.params:>12,} {format_count(exact.stem.macs):>12}")
    print(f"{'head':>5} {'':>{pad}} {exact.head.params:>12,} {format_count(exact.head.macs):>12}")
    print(f"total: params {exact.params:,}, MACs {exact.macs / 1e6:.1f} M (exact), {glit_.macs / 1e6:.1f} M (glit)")


def _config(args, epochs_key: str):
    from glit.config import load_config

    preset = getattr(args, "preset_name", None) or args.preset
    epochs = [] if args.epochs is None else [f"{epochs_key}={args.epochs}"]
    board = ["log.tensorboard=true"] if getattr(args, "tensorboard", False) else []
    cfg = load_config(preset, args.config, [*epochs, *board, *args.set])  # --set, the most specific, wins
    if args.data:
        cfg.data.source, cfg.data.root = "folder", args.data
    return cfg


def cmd_train_supernet(args) -> None:
    from glit.presets import load_arch
    from glit.recipes import train_supernet

    cfg = _config(args, "supernet.optim.epochs")
    if args.level is not None:
        cfg.level = args.level
    if args.distribution:
        cfg.level, cfg.distribution = 2, [b.num_global_heads for b in load_arch(args.distribution).blocks]
    if args.warm_start:
        cfg.supernet.warm_start = args.warm_start
    result = train_supernet(cfg, args.out, resume=args.resume)
    _summary("supernet", result["metrics"], args.out)


def cmd_train(args) -> None:
    from glit.presets import load_arch
    from glit.recipes import train

    cfg = _config(args, "train.epochs")
    arch = load_arch(args.arch)
    result = train(cfg, arch, args.out, resume=args.resume)
    if _is_main():
        print(f"trained {args.arch}: test top-1 {result['top1']:.2f}%, params {result['params']:,}, "
              f"MACs {format_count(result['macs'])}, {result['train_seconds']:.0f} s; outputs in {args.out}")


def cmd_eval(args) -> None:
    from glit.presets import load_arch
    from glit.recipes import evaluate_checkpoint

    arch = load_arch(args.arch) if args.arch else None
    result = evaluate_checkpoint(args.checkpoint, args.data, arch, args.batch_size)
    if _is_main():
        print(dumps(result) if args.json else
              f"{args.checkpoint} (epoch {result['epoch']}): top-1 {result['top1']:.2f}% on {result['images']} "
              f"test images, loss {result['loss']:.4f}")


def cmd_search(args) -> None:
    from glit.presets import level1_part, load_arch
    from glit.recipes.search import search, search_config, supernet_checkpoint
    from glit.space import SearchSpace

    ckpt, file = supernet_checkpoint(args.supernet)
    flags = {"strategy": args.strategy, "max_macs": args.max_macs, "max_params": args.max_params,
             "population": args.population, "generations": args.generations, "convention": args.convention,
             "max_latency": args.max_latency, "latency_lut": args.lut, "finalists": args.finalists}
    overrides = [f"search.{k}={v}" for k, v in flags.items() if v is not None] + \
        (["log.tensorboard=true"] if args.tensorboard else []) + args.set
    cfg = search_config(ckpt, file, overrides)
    incumbent = load_arch(args.incumbent) if args.incumbent else None
    trained = SearchSpace.from_dict(ckpt["space"], f"{file}: space")
    space = level1_part(cfg.preset, trained) if args.level1 else None
    marginal = trained if args.level1 and cfg.search.level1_scoring == "marginal" else None
    result = search(cfg, args.supernet, args.out, resume=args.resume, incumbent=incumbent, space=space,
                    marginal=marginal)
    if _is_main():
        print(f"search: {result['scored']} candidates scored under {result['budget']}; best search-split top-1 "
              f"{result['score']:.2f}%, params {result['params']:,}, MACs {format_count(result['macs'])}; "
              f"best architecture in {args.out}/best.json")
        if result["incumbent"]:
            inc = result["incumbent"]
            verdict = "kept" if inc["kept"] else "replaced"
            print(f"incumbent {verdict}: it scored {inc['score']:.2f}%, the best-scored candidate "
                  f"{inc['best_score']:.2f}% (margin {inc['margin_points']:.2f} points)")
    if cfg.search.finalists:
        from glit.recipes.finalists import finalist_round

        final = Path(args.out) / "finalists"
        r = finalist_round(cfg, [(Path(args.supernet), Path(args.out))], final)
        if _is_main():
            w = r["winner"]
            print(f"finalist round: the top {r['k']} re-scored by {r['evaluator']}; the winner scored "
                  f"{w['score']:.4g} (search score {w['search_score']:.2f}%): {final}/finalists.json")


def cmd_run(args) -> None:
    from glit.recipes.run import run
    from glit.report import write_report
    from glit.text import run_table

    flags = {"max_macs": args.max_macs, "max_latency": args.max_latency, "latency_lut": args.lut}
    args.set = [f"search.{k}={v}" for k, v in flags.items() if v is not None] + args.set
    cfg = _config(args, "train.epochs")
    summary_file = Path(args.out) / "summary.json"
    before = summary_file.read_bytes() if summary_file.is_file() else None
    summary = run(cfg, args.out, command=_command_line())
    if _is_main():
        if summary_file.read_bytes() != before:  # a finished run given nothing new keeps its report as it is
            write_report(Path(args.out))
        print(run_table(summary))
        print(f"summary: {args.out}/summary.json; report: {args.out}/report.html")


def _command_line() -> str:
    """The command as the user typed it, for the records of a run."""
    return "glit " + " ".join(sys.argv[1:])


def cmd_report(args) -> None:
    from glit.folder import owner
    from glit.report import write_report

    folder = Path(args.dir)
    if not folder.is_dir():
        raise GlitError(f"{folder}: no such folder (pass the --out DIR of a glit run)")
    if owner(folder) != "glit run":
        raise GlitError(f"{folder}: not a glit run folder (it has no run.json); glit report renders glit run folders")
    print(f"report: {write_report(folder)}")


def _version() -> str:
    from glit.version import version_string

    return version_string()


def cmd_ablate(args) -> None:
    from glit.presets import load_arch
    from glit.recipes.ablate import ablate
    from glit.report.ablate import write_ablation_page
    from glit.text import ablation_table

    cfg = _config(args, "train.epochs")
    arch = load_arch(args.arch) if args.arch else None
    result = ablate(cfg, args.study, args.out, args.seeds, arch, command=_command_line())
    if _is_main():
        write_ablation_page(Path(args.out), result)
        print(ablation_table(result))
        print(f"table: {args.out}/ablation-{args.study}.json, {args.out}/ablation-{args.study}.html")


def cmd_export(args) -> None:
    from glit.presets import load_arch
    from glit.recipes.export import export

    arch = load_arch(args.arch) if args.arch else None
    result = export(args.out, args.format, args.checkpoint, args.supernet, arch, args.data)
    if _is_main():
        extra = f"; onnxruntime matches PyTorch within {result['max_abs_diff']:.1e}" if "max_abs_diff" in result \
            else f"; architecture in {result['arch_file']}; load it with glit.load_model({args.out!r})"
        print(f"export: {result['source']} -> {args.out} ({args.format}{extra})")


def cmd_latency(args) -> None:
    from glit.recipes.latency import build_table, check_table
    from glit.search.latency import LatencyTable
    from glit.space import SearchSpace

    if args.action == "build":
        from glit.presets import space_preset

        if not args.out:
            raise GlitError("glit latency build needs --out FILE")
        ops = tuple(args.local_ops.split(",")) if args.local_ops else ("conv1d",)
        space = space_preset(args.preset, 2, level2_space="full", local_ops=ops)
        build_table(space, args.out, args.device, args.batch, args.threads, args.calibration, repeats=args.repeats,
                    rounds=args.rounds)
        return
    if not args.lut:
        raise GlitError("glit latency check needs --lut FILE")
    table = LatencyTable.load(args.lut)
    if "space" not in table.info:
        raise GlitError(f"{args.lut}: the table does not record its space; rebuild it with glit latency build")
    result = check_table(table, SearchSpace.from_dict(table.info["space"], f"{args.lut}: space"), args.archs)
    if args.json:
        print(dumps(result, indent=2))
        return
    for r in result["rows"]:
        error = 100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
        print(f"predicted {r['predicted_ms']:8.3f} ms  measured {r['measured_ms']:8.3f} ms  error {error:+6.1f}%")
    print(f"latency check: {result['within_10pct']:.0%} of {result['archs']} architectures within 10% of the "
          f"measured latency; RMSE {result['rmse_ms']:.3f} ms; mean error {result['mean_error_pct']:+.1f}%")
    if result["drift"] is not None:
        print(f"the machine runs {result['drift']:.2f}x as long as when the table was built (its anchor, the "
              f"DeiT-style architecture, timed with these); with that divided out, "
              f"{result['within_10pct_drift_corrected']:.0%} within 10%")


def cmd_truth(args) -> None:
    from glit.config import load_config
    from glit.recipes.truth import truth

    cfg = load_config(args.preset, args.config, args.set)
    cfg.data.source, cfg.data.root = ("folder", args.data) if args.data else (cfg.data.source, cfg.data.root)
    if args.max_macs is not None:
        cfg.search.max_macs = args.max_macs
    result = truth(cfg, args.out, args.archs, _int_list(args.seeds, "--seeds"), args.jobs, args.threads,
                   args.sample, args.sample_seed)
    if _is_main():
        rows = result["rows"]
        seeds = sorted({r["seed"] for r in rows})
        per_seed = ", ".join(f"{sum(r['seed'] == s for r in rows)} on seed {s}" for s in seeds)
        print(f"truth: {len(rows)} trainings in {args.out}/truth.jsonl ({per_seed}); "
              f"score a supernet against it with: glit rank --supernet DIR --truth {args.out}/truth.jsonl")


def cmd_compare(args) -> None:
    from glit.files import write_text_atomic
    from glit.recipes.compare import compare_runs
    from glit.report.compare import render as compare_page
    from glit.text import compare_table

    result = compare_runs(args.runs)
    if args.html:
        write_text_atomic(args.html, compare_page(result))
    print(dumps(result) if args.json else compare_table(result))


def cmd_rank(args) -> None:
    from glit.recipes.rank import rank
    from glit.text import rank_table

    result = rank(args.supernet, args.truth, args.data, args.set, level1=args.level1, scoring=args.scoring,
                  evaluator=args.evaluator, subset=args.selection)
    if _is_main():
        print(dumps(result) if args.json else rank_table(result))


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise GlitError(f"{flag}: expected comma-separated integers such as 0,1, got {text!r}") from None


def _summary(what: str, metrics: dict, out) -> None:
    if _is_main() and metrics:
        top1 = f", search-split top-1 {metrics['top1']:.2f}%" if "top1" in metrics else ""
        print(f"{what}: {metrics['epoch']} epochs, final loss {metrics['loss']:.4f}{top1}; outputs in {out}")


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _add_latency_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-latency", metavar="TIME", help="latency budget, e.g. 4ms (needs --lut)")
    p.add_argument("--lut", metavar="FILE", help="the latency table that predicts it (glit latency build)")


def _add_run_flags(p: argparse.ArgumentParser, epochs_help: str) -> None:
    p.add_argument("--preset", default=None, help="run preset: demo, cifar, tiny, small or base (default: demo, "
                                                   "or the config file's 'preset')")
    p.add_argument("--config", metavar="FILE", help="a YAML config; keys as in DIR/config.yaml of any run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set train.lr=1e-3 --set data.workers=0 (repeatable)")
    p.add_argument("--data", metavar="DIR", help="an ImageFolder tree DIR/{train,val|test}/<class>/*.jpg in place of "
                                                 "the preset's data; images are resized to the model's size")
    p.add_argument("--epochs", type=int, help=epochs_help)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: config.yaml, checkpoint.pt, "
                                                               "metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    _add_tensorboard_flag(p)


def _add_tensorboard_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files into each stage "
                   "folder's tensorboard/ (log.tensorboard; needs pip install 'glit[tensorboard]')")


class Parser(argparse.ArgumentParser):
    """argparse with glit's bad-input contract: one line on stderr that names the command and the argument (with a
    pointer to --help instead of the usage block), exit code 2. The subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="glit", description="Hierarchical neural architecture search for Global and Local image Transformers "
                                 "(GLiT, ICCV 2021). Start with: glit run demo --out runs/demo",
        epilog="Exit codes: 0 success, 2 bad input (one line naming the file, key or value), 1 internal error.")
    parser.add_argument("--version", action="version", version=f"glit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("space", help="size and cost range of a preset's search space",
                       description="The size of a preset's search space, and the params and MACs (exact convention) "
                                   "of its smallest and largest members.")
    p.add_argument("preset", help="space preset: demo, cifar, tiny, small or base")
    p.add_argument("--level", type=int, choices=(1, 2), default=1,
                   help="1: only num_global_heads varies; 2: every gene varies (default: 1)")
    p.add_argument("--space", choices=LEVEL2_SPACES, default="full",
                   help="level 2: every detail gene free (full, default), or the authors' nine options per block")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_space)

    p = sub.add_parser("profile", help="params and MACs of an architecture, per block",
                       description="Params, MACs (exact and glit conventions) and a per-block breakdown.")
    p.add_argument("--arch", required=True, metavar="FILE|NAME",
                   help="an architecture JSON file, or a preset: deit-tiny, deit-small, deit-base, glit-tiny-released")
    p.add_argument("--json", action="store_true", help="print JSON; top-level keys params, macs (exact), macs_glit")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("train-supernet", help="train a weight-sharing supernet (level 1 or 2)",
                       description="Train a supernet by uniform single-path sampling. Works under torchrun (DDP).")
    _add_run_flags(p, "epochs (sets supernet.optim.epochs)")
    p.add_argument("--level", type=int, choices=(1, 2), help="1: vary num_global_heads; 2: vary the details, with "
                                                             "the distribution from --set distribution=[...], or "
                                                             "every gene without one (the whole space)")
    p.add_argument("--distribution", metavar="FILE", help="level 2: take num_global_heads per block from this "
                                                          "architecture file (e.g. a level-1 search's best.json)")
    p.add_argument("--warm-start", metavar="DIR|FILE", help="seed the weights with another supernet's paths that "
                                                            "this space shares (a level-1 supernet: its paths for "
                                                            "the distribution, or all of them for the whole space)")
    p.set_defaults(func=cmd_train_supernet)

    p = sub.add_parser("search", help="evolutionary or random search on a trained supernet",
                       description="Search a trained supernet under a MACs/params budget. Writes candidates.jsonl, "
                                   "best.json, topk.json, pareto.json and result.json. Works under torchrun.")
    p.add_argument("--supernet", required=True, metavar="DIR|FILE", help="a glit train-supernet output folder or "
                                                                         "its checkpoint.pt")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--strategy", choices=STRATEGIES, help="default: evolution")
    p.add_argument("--max-macs", metavar="M", help="MACs budget, e.g. 1.3G or 45M (default: the MACs of the "
                                                   "all-global DeiT-style architecture; 'inf' for none)")
    p.add_argument("--max-params", metavar="P", help="params budget, e.g. 6M (default: none)")
    _add_latency_flags(p)
    p.add_argument("--convention", choices=CONVENTIONS, help="MAC convention of the budget (default: exact)")
    p.add_argument("--population", type=int, help="candidates per generation (default: 50)")
    p.add_argument("--generations", type=int, help="generations (default: 20)")
    p.add_argument("--finalists", type=int, metavar="K", help="then a finalist round: the top K distinct candidates "
                   "re-scored by search.finalist_evaluator, into OUT/finalists (default: search.finalists)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set search.mutate_prob=0.2 (repeatable)")
    p.add_argument("--incumbent", metavar="FILE", help="an architecture scored first and kept as the answer unless a "
                   "candidate beats it by search.incumbent_margin standard errors (glit run passes the level-1 "
                   "winner to the level-2 search)")
    p.add_argument("--level1", action="store_true", help="search only the supernet's level-1 members (the detail "
                   "genes at their level-1 values), e.g. on a supernet trained over the whole space; with --set "
                   "search.level1_scoring=marginal each scores as the mean of search.marginal_samples detail settings")
    p.add_argument("--resume", action="store_true", help="continue the search in --out from search_state.json")
    _add_tensorboard_flag(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("run", help="the whole pipeline: hierarchical search, retraining, baselines, report",
                       description="Level-1 supernet and search, level-2 supernet and search, random-search "
                                   "baseline over the whole space, then retraining of the searched, DeiT-style "
                                   "and random architectures with the same recipe. Writes summary.json and "
                                   "report.html. Run it again to continue where it stopped.")
    p.add_argument("preset_name", nargs="?", metavar="PRESET", help="demo (default), cifar, tiny, small or base")
    _add_run_flags(p, "retraining epochs (sets train.epochs)")
    p.add_argument("--max-macs", metavar="M", help="MACs budget (default: the DeiT-style architecture's MACs)")
    _add_latency_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ablate", help="the paper's ablations: search (hierarchy, one-level, random) or locality",
                       description="One ablation table, end to end, with the preset's recipe and MACs budget. "
                                   "--study search runs glit run in --out (reusing a finished one with the same "
                                   "config), then one-level search over the whole space with as many candidates as "
                                   "the hierarchy scored, and retrains each winner. --study locality retrains one "
                                   f"architecture with each local operator ({', '.join(LOCAL_OPS)}) and the "
                                   "all-global baseline. Every model is retrained with --seeds seeds and reported as "
                                   "mean ± std. Writes ablation-STUDY.json and ablation-STUDY.html. Run it again to "
                                   "continue.")
    p.add_argument("preset_name", nargs="?", metavar="PRESET", help="demo (default), cifar, tiny, small or base")
    p.add_argument("--study", required=True, choices=("search", "locality"), help="which ablation")
    p.add_argument("--seeds", type=int, default=1, help="retraining seeds per model (default: 1)")
    p.add_argument("--arch", metavar="FILE|NAME", help="locality: the architecture whose local heads change (default: "
                                                     "the level-1 details with H/3 global heads per block)")
    _add_run_flags(p, "retraining epochs (sets train.epochs)")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("export", help="a trained model (or a supernet path) to ONNX or safetensors",
                       description="Export a glit train checkpoint, or one path of a supernet (--supernet DIR --arch "
                                   "FILE, BatchNorm recalibrated as the search does), to ONNX (a dynamic batch axis, "
                                   "checked in onnxruntime against PyTorch on real test images: at most 1e-4 apart) "
                                   "or to safetensors (weights under timm-style names, the architecture in its "
                                   "metadata and in a .json beside it; glit.load_model(FILE) rebuilds the model).")
    p.add_argument("--checkpoint", metavar="FILE", help="a glit train checkpoint.pt")
    p.add_argument("--supernet", metavar="DIR|FILE", help="a glit train-supernet folder or its checkpoint.pt")
    p.add_argument("--arch", metavar="FILE|NAME", help="with --supernet: the path to export")
    p.add_argument("--format", required=True, choices=("onnx", "safetensors"))
    p.add_argument("--data", metavar="DIR", help="an ImageFolder tree in place of the checkpoint's data")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (model.onnx, model.safetensors)")
    p.set_defaults(func=cmd_export, out_is_file=True)

    p = sub.add_parser("latency", help="a latency table measured on this machine, and its check",
                       description="build: measure the latency of every distinct block configuration of a preset's "
                                   "whole space, the stem and the head on this machine (timed in interleaved rounds; "
                                   "the median of the rounds, outliers dropped), plus a constant from a few "
                                   "architectures timed end to end, into a JSON table for --max-latency. check: time "
                                   "N sampled architectures end to end and print predicted against measured latency, "
                                   "the share within 10%% and the RMSE, and the machine's drift since the build.")
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("preset", nargs="?", default="demo", help="build: the space preset (default: demo)")
    p.add_argument("--out", metavar="FILE", help="build: the table to write")
    p.add_argument("--device", default="cpu", help="build: cpu (default) or cuda")
    p.add_argument("--batch", type=int, default=1, help="build: images per call (default: 1)")
    p.add_argument("--threads", type=int, help="build: intra-op threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=5, help="build: timed calls per part and round (default: 5)")
    p.add_argument("--rounds", type=int, default=20, help="build: interleaved rounds over all parts (default: 20)")
    p.add_argument("--calibration", type=int, default=8, help="build: architectures timed end to end for the "
                                                              "constant (default: 8)")
    p.add_argument("--local-ops", metavar="OP,OP",
                   help=f"build: local operators of the space, of {', '.join(LOCAL_OPS)} (default: conv1d)")
    p.add_argument("--lut", metavar="FILE", help="check: the table to check")
    p.add_argument("--archs", type=int, default=20, help="check: architectures to time (default: 20)")
    p.add_argument("--json", action="store_true", help="check: print JSON")
    p.set_defaults(func=cmd_latency, out_is_file=True)

    p = sub.add_parser("truth", help="ground truth: train a stratified sample of architectures from scratch",
                       description="Train a stratified sample of the preset's whole space under the budget from "
                                   "scratch with the preset's retraining recipe, and record each test top-1 in "
                                   "DIR/truth.jsonl, the ground truth for glit rank. Run it again to continue after "
                                   "an interruption, or with more --archs or --seeds to extend the same file. Works "
                                   "under torchrun (each rank trains its own models).")
    p.add_argument("preset", help="run preset: demo, cifar, tiny, small or base")
    p.add_argument("--data", metavar="DIR", help="an ImageFolder tree in place of the preset's data")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: truth.jsonl, sample.json, runs/")
    p.add_argument("--archs", type=int, default=24, help="train the first N architectures of the sample (default: "
                                                         "24)")
    p.add_argument("--seeds", default="0", metavar="S,S", help="training seeds, each for every architecture "
                   "(default: 0); e.g. --archs 24 --seeds 0, then --archs 8 --seeds 1 for a noise ceiling")
    p.add_argument("--max-macs", metavar="M", help="MACs budget of the sample (default: the DeiT-style MACs)")
    p.add_argument("--sample", choices=("stratified", "uniform"), default="stratified",
                   help="stratified (default: anchors, then bands of global heads and MACs) or uniform (drawn "
                        "uniformly from the whole space under the budget: a confirmation set)")
    p.add_argument("--sample-seed", type=int, default=0, metavar="N", help="the sample's seed (default: 0)")
    p.add_argument("--jobs", type=int, help="worker processes (default: one per GPU; on CPU, one per core up to 2)")
    p.add_argument("--threads", type=int, help="intra-op threads per worker (default: the cores / --jobs)")
    p.add_argument("--config", metavar="FILE", help="a YAML config; keys as in DIR/config.yaml of any run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set train.epochs=4 (repeatable)")
    p.set_defaults(func=cmd_truth)

    p = sub.add_parser("compare", help="the claim over pipeline seeds: glit run folders side by side",
                       description="Each finished glit run folder's finalists (test top-1) and the searched "
                                   "architecture's paired differences against the DeiT-style and random-search "
                                   "baselines, then over the runs (one per seed) each difference's mean, std and a "
                                   "one-sided one-sample t-test over seeds. Unfinished runs are listed, not counted.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="glit run output folders, one per pipeline seed")
    p.add_argument("--json", action="store_true", help="print JSON: runs, searched, baseline, random, vs_baseline "
                                                       "and vs_random (per_seed, n, mean, std, p_value)")
    p.add_argument("--html", metavar="FILE", help="also write the table as a self-contained HTML page")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("rank", help="how well a supernet ranks the architectures of a ground truth",
                       description="Score every architecture of a glit truth file that the supernet's space holds, "
                                   "exactly as the search scores a candidate, and print Kendall tau, Spearman rho, "
                                   "precision at 5 and regret against the mean test top-1 over seeds, with the "
                                   "noise ceiling (Kendall tau between two training seeds).")
    p.add_argument("--supernet", required=True, metavar="DIR|FILE", help="a glit train-supernet output folder or "
                                                                         "its checkpoint.pt")
    p.add_argument("--truth", required=True, metavar="FILE", help="a truth.jsonl written by glit truth")
    p.add_argument("--level1", action="store_true", help="rank only the level-1 members of the supernet's space, as "
                                                         "the level-1 search scores them")
    p.add_argument("--scoring", choices=("arch", "level1", "marginal"), default="arch",
                   help="an architecture's score: its own (default, as level 2 and random search score), or its "
                        "distribution's as level 1 scores it: with the level-1 details (level1), or the mean over "
                        "search.marginal_samples detail settings drawn under the budget (marginal)")
    p.add_argument("--evaluator", choices=EVALUATORS, default="supernet",
                   help="how an architecture is scored: supernet (default: inherited weights), finetune (inherited "
                        "weights trained search.finetune_steps steps first), short / short-tse (trained from scratch "
                        "search.short_epochs epochs: search-split top-1 / minus the summed training loss), or a "
                        "zero-cost proxy at initialisation: params, synflow, naswot, dss")
    p.add_argument("--selection", type=int, nargs="?", const=10, metavar="M",
                   help="also run the selection test: over subsets of M architectures (default 10), the true top-1 "
                        "of the evaluator's pick minus a random pick's, and its regret to the subset's best, with "
                        "bootstrap 95%% intervals")
    p.add_argument("--data", metavar="DIR", help="the supernet's ImageFolder tree, if it has moved")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set search.bn_batches=8 (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object: n, kendall_tau, spearman_rho, "
                                                       "precision_at_5, regret, noise_ceiling_tau, pairs, ...")
    p.set_defaults(func=cmd_rank)

    p = sub.add_parser("train", help="train one architecture from scratch",
                       description="Train one architecture from scratch (retraining or a baseline) and evaluate "
                                   "it on the test split each epoch. Works under torchrun (DDP).")
    _add_run_flags(p, "epochs (sets train.epochs)")
    p.add_argument("--arch", required=True, metavar="FILE|NAME", help="an architecture JSON file or preset name")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="write a run folder's report.html again",
                       description="Render DIR/report.html from what a glit run folder holds, finished or not: a "
                                   "partial run shows the stages that exist so far. Reads nothing else.")
    p.add_argument("dir", metavar="DIR", help="a glit run output folder")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("eval", help="evaluate a trained checkpoint on the test split",
                       description="Top-1 of a checkpoint on the test split of its data, or of --data.")
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a checkpoint.pt written by glit train")
    p.add_argument("--data", metavar="DIR", help="evaluate on this ImageFolder tree's val/ or test/ split")
    p.add_argument("--arch", metavar="FILE|NAME", help="for a supernet checkpoint: the path to evaluate")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default: 256)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = getattr(args, "out", None) and not getattr(args, "out_is_file", False)  # glit export writes a file
    out = Path(args.out) if folder and _is_main() else None
    try:
        if out is not None:
            from glit.folder import lock

            lock(out)  # one command at a time in a run folder
        args.func(args)
    except GlitError as err:
        # An error raised in a DataLoader worker comes back wrapped in a traceback: keep its last line.
        message = str(err).strip().splitlines()[-1].removeprefix("glit.errors.GlitError: ")
        if getattr(args, "resume", None) is False:  # a command that continues a run only when told to
            message = message.replace("run the same command again", "run the same command again with --resume")
        print(f"glit: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        print("glit: error: out of memory: the model or batch does not fit this machine (a smaller architecture, "
              "train.batch_size or search.batch_size will)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (glit space demo | head -1): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if out is not None:
            from glit.folder import unlock

            unlock(out)
        _close_process_group()
    return 0


def _out_of_memory(err: BaseException) -> bool:
    """An allocation that failed: host memory (MemoryError, torch's CPU allocator) or GPU memory."""
    text = str(err)
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or \
        "can't allocate memory" in text or "out of memory" in text.lower()


def _close_process_group() -> None:
    """Under torchrun, leave the process group cleanly: a live gloo group at exit aborts the process."""
    td = sys.modules.get("torch.distributed")
    if td is not None and td.is_available() and td.is_initialized():
        td.destroy_process_group()
