"""Command line: ``python -m paper_checks [--quick|--full] [--only PATTERN] [--out DIR] ...``.

Exit status: 0 if every measurement passed, 1 if any failed or a check errored, 2 on a usage
error (bad option, a pattern matching no check, no checks registered), 130 if interrupted, 141
if the reader of standard output went away (``--list | head``; quietly, like any Unix filter
killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from paper_checks import runner

_EPILOG = """\
mode: --quick (the default) uses small sizes, seconds per check, well under 10 minutes in all;
--full uses the sizes of the papers' claims.

patterns are matched against check ids as fnmatch globs or plain substrings; several may be
given comma-separated or by repeating --only, e.g.
  --only cohen.stability_thresholds         one check
  --only 'kunin.*'                          every check of one paper
  --only stationary_cov,eos_chebyshev       substrings (kunin.discrete_stationary_cov, ...)
--list shows the ids.

outputs (in --out): report.md (table of predicted vs measured with verdicts), results.json
(every measurement, timings, versions), figures/ (figures the checks saved) and, only when a
check raised, logs/<id>.log with its traceback.

exit status: 0 all measurements passed; 1 some failed or errored; 2 usage error; 130
interrupted; 141 standard output closed early (e.g. piped into head).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m paper_checks",
        description="Run the sgdsim verification suite: published claims, predicted vs measured.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="quick",
        action="store_true",
        default=True,
        help="quick sizes, seconds per check (the default when neither flag is given)",
    )
    mode.add_argument(
        "--full",
        dest="quick",
        action="store_false",
        help="full sizes of the papers' claims (minutes per check)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run only checks whose id matches PATTERN (glob or substring; comma-separated "
        "or repeated)",
    )
    p.add_argument(
        "--out",
        default=str(runner.DEFAULT_OUT_DIR),
        metavar="DIR",
        help=f"output directory (default: {runner.DEFAULT_OUT_DIR}/)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed given to every check (default: 0)")
    p.add_argument(
        "--list", action="store_true", help="list the (selected) check ids, papers and claims"
    )
    p.add_argument(
        "--no-progress", action="store_true", help="print nothing while running (only errors)"
    )
    return p


def _list(
    loaded: runner.LoadedChecks, patterns: list[str] | None, stdout: TextIO, stderr: TextIO
) -> int:
    specs = runner.select_checks(loaded.checks, patterns, import_errors=loaded.import_errors)
    for spec in specs:
        stdout.write(f"{spec.id}  [{spec.paper}]\n    {spec.claim}\n")
    stdout.write(f"{len(specs)} check(s)\n")
    for mod, tb in sorted(loaded.import_errors.items()):
        last = tb.strip().splitlines()[-1:] or ["?"]
        stderr.write(f"warning: import of {mod} failed: {last[0]}\n")
    stdout.flush()
    return 0


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run or list the checks; return the exit status."""
    try:
        return _main(argv, stdout or sys.stdout, stderr or sys.stderr)
    except BrokenPipeError:
        # the reader left (`--list | head`): stop quietly. Point stdout at /dev/null so that the
        # interpreter's final flush does not raise a second time.
        if stdout is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None, stdout: TextIO, stderr: TextIO) -> int:
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return exc.code if isinstance(exc.code, int) else 2
    if args.seed < 0:
        stderr.write(f"error: `--seed` must be >= 0, got {args.seed}\n")
        return 2
    os.environ.setdefault("MPLBACKEND", "Agg")  # checks save figures; never open a window
    patterns = runner.split_patterns(args.only)
    try:
        if args.list:
            return _list(runner.load_checks(), patterns, stdout, stderr)
        result = runner.run_checks(
            patterns,
            quick=args.quick,
            out_dir=args.out,
            seed=args.seed,
            progress=not args.no_progress,
            stream=stdout,
            loader=runner.load_checks,
        )
    except (runner.UnknownPatternError, runner.NoChecksError) as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        stderr.write(f"interrupted; partial report in {args.out}/report.md\n")
        return 130
    if args.no_progress and not result.ok:
        c = result.counts()
        stderr.write(
            f"{c['failed']} of {c['rows']} measurements failed ({c['errors']} errors); "
            f"see {result.report_path}\n"
        )
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
