"""The ``glit`` command line. Thin: parse arguments, load configs, call library functions.

Exit codes: 0 success, 2 bad input (a one-line message, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys

from glit.errors import GlitError


def _fmt_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def cmd_space(args) -> None:
    from glit.cost import cost, extremes
    from glit.space import GENES, SearchSpace

    space = SearchSpace.from_preset(args.preset, level=args.level)
    fam = space.family
    rows = []
    for key in ("macs", "params"):
        lo, hi = extremes(space, key)
        rows += [(f"smallest by {key}", cost(lo)), (f"largest by {key}", cost(hi))]
    if args.json:
        print(json.dumps({
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
        text = ", ".join(f"{g} {{{', '.join(f'{v:g}' for v in getattr(block, g))}}}" for g in GENES)
        groups.setdefault(text, []).append(i)
    for text, idx in groups.items():
        print(f"  {'every block' if len(idx) == fam.depth else 'blocks ' + str(idx)}: {text}")
    print(f"  distinct architectures: {space.size():.4g} ({space.size()})")
    print(f"  gene combinations (the paper's count): {space.num_gene_combinations():.4g}")
    for name, c in rows:
        print(f"  {name:<20} params {c.params:>12,}  MACs {_fmt_count(c.macs)}")


def cmd_profile(args) -> None:
    from glit.cost import cost
    from glit.presets import load_arch

    arch = load_arch(args.arch)
    exact, glit_ = cost(arch, "exact"), cost(arch, "glit")
    if args.json:
        print(json.dumps({
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
    print(f"{'block':>5} {'G/L':>5} {'qkv':>5} {'mlp':>5} {'E':>5} {'K':>5} {'params':>12} {'MACs':>12} "
          f"{'MACs glit':>12}")
    def dash(v):
        return "-" if v is None else f"{v:g}"
    for i, (g, b, bg) in enumerate(zip(arch.blocks, exact.blocks, glit_.blocks)):
        gl = f"{g.num_global_heads}/{fam.num_heads - g.num_global_heads}"
        print(f"{i:>5} {gl:>5} {dash(g.qkv_ratio):>5} {dash(g.mlp_ratio):>5} {dash(g.conv_ratio):>5} "
              f"{dash(g.kernel_size):>5} {b.total.params:>12,} {_fmt_count(b.total.macs):>12} "
              f"{_fmt_count(bg.total.macs):>12}")
    print(f"{'stem':>5} {'':>29} {exact.stem.params:>12,} {_fmt_count(exact.stem.macs):>12}")
    print(f"{'head':>5} {'':>29} {exact.head.params:>12,} {_fmt_count(exact.head.macs):>12}")
    print(f"total: params {exact.params:,}, MACs {exact.macs / 1e6:.1f} M (exact), {glit_.macs / 1e6:.1f} M (glit)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glit", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("space", help="size and cost range of a preset's search space",
                       description="The size of a preset's search space, and the params and MACs (exact convention) "
                                   "of its smallest and largest members.")
    p.add_argument("preset", help="space preset: demo, cifar, tiny, small or base")
    p.add_argument("--level", type=int, choices=(1, 2), default=1,
                   help="1: only num_global_heads varies; 2: every gene varies (default: 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_space)

    p = sub.add_parser("profile", help="params and MACs of an architecture, per block",
                       description="Params, MACs (exact and glit conventions) and a per-block breakdown.")
    p.add_argument("--arch", required=True, metavar="FILE|NAME",
                   help="an architecture JSON file, or a preset: deit-tiny, deit-small, deit-base, glit-tiny-released")
    p.add_argument("--json", action="store_true", help="print JSON; top-level keys params, macs (exact), macs_glit")
    p.set_defaults(func=cmd_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GlitError as err:
        print(f"glit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glit: interrupted", file=sys.stderr)
        return 130
    return 0
