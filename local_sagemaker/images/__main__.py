"""``python -m local_sagemaker.images build|list``: the set-up step for image environments."""

from __future__ import annotations

import argparse

from . import catalog, environment_for, is_built
from .build import build_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_sagemaker.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) the environment of every image")
    build.add_argument("names", nargs="*", help="only these images (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    sub.add_parser("list", help="list the supported images and where their environments are")
    args = parser.parse_args(argv)
    if args.command == "build":
        build_all(force=args.force, names=args.names or None)
        return 0
    for spec in catalog():
        env = environment_for(spec)
        state = "built" if is_built(env) else "not built"
        print(f"{spec.name}\t{state}\t{env.prefix}\t{spec.description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
