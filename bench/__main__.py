"""Run every benchmark in bench/ (`make bench`), or the ones named: `python -m bench validate`."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.endswith("_bench"))
    wanted = [n for n in names if not argv or any(n.startswith(a) for a in argv)]
    for name in wanted:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
