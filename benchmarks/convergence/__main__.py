"""``python -m benchmarks.convergence [--quick | --tiny] [--out DIR] [--only NAME ...]
[--report-only]``."""

from __future__ import annotations

import argparse

from . import DEFAULT_OUT, EXPERIMENTS, FULL, QUICK, TINY, report_only, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller grids (a few minutes)")
    size.add_argument("--tiny", action="store_true", help="smoke test (seconds; the tests)")
    parser.add_argument(
        "--out",
        default=None,
        help=f"output folder (default {DEFAULT_OUT}, or its quick/ subfolder with --quick)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(EXPERIMENTS), default=None,
        help="run only these experiments",
    )  # fmt: skip
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the Markdown and PNGs from the CSV of a finished run (same size flag)",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else TINY if args.tiny else FULL
    if args.report_only:
        for path in report_only(cfg, args.out):
            print(f"wrote {path}")
        return
    run(cfg, args.out, experiments=tuple(args.only) if args.only else None)


if __name__ == "__main__":
    main()
