"""``python -m devtools.tiny_models OUT_DIR [FAMILY ...]``: build tiny checkpoints offline."""

from __future__ import annotations

import argparse

from devtools.tiny_models import BUILDERS, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("families", nargs="*", help=f"default: all of {', '.join(BUILDERS)}")
    args = parser.parse_args()
    unknown = sorted(set(args.families) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown families: {', '.join(unknown)}")
    for family in args.families or BUILDERS:
        print(f"{family}: {build(family, args.out_dir)}")


if __name__ == "__main__":
    main()
