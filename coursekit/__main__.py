"""Command line: ``python -m coursekit labs [--check]`` (and ``grade``, see ``--help``)."""
import argparse
import sys


def _labs(args):
    from . import labs

    try:
        stale = labs.build(check=args.check)
    except labs.LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if stale:
            print("labs out of date (run `python -m coursekit labs`):", file=sys.stderr)
            for name in stale:
                print(f"  labs/{name}", file=sys.stderr)
            return 1
        print("labs are in sync with solutions/")
        return 0
    print(f"wrote {len(stale)} lab(s)" + (": " + ", ".join(stale) if stale else " (all up to date)"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursekit", description="Course machinery.")
    commands = parser.add_subparsers(dest="command", required=True)
    labs_parser = commands.add_parser("labs", help="generate labs/ from solutions/")
    labs_parser.add_argument("--check", action="store_true", help="exit 1 and list labs that are out of date")
    labs_parser.set_defaults(func=_labs)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
