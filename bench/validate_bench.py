"""Validate benchmark: `load_revision` on the engineering fixture and on a generated 1 000-file repository.

Each figure is the median of several runs, next to its floor: bare `yaml.load(..., Loader=CSafeLoader)` of
the same YAML files, in the same process. Goal (issue 3): under 1 s and within 3x the floor.
Set `KIKET_BENCH_PROFILE=1` to print the top cProfile entries of one run of each case.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

from app.kiket.loader import load_revision
from bench.generate_repo import generate

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
GOAL_SECONDS = 1.0
GOAL_RATIO = 3.0


def _median_ms(work: Callable[[], object], runs: int) -> float:
    work()  # warm caches (bundled templates, imports) once, outside the timing
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _floor(files: dict[str, bytes]) -> Callable[[], None]:
    texts = [data for path, data in files.items() if path.endswith((".yaml", ".yml"))]

    def parse() -> None:
        for data in texts:
            try:
                yaml.load(data, Loader=yaml.CSafeLoader)
            except yaml.YAMLError:
                pass

    return parse


def _engineering_files() -> dict[str, bytes] | None:
    bundle = FIXTURES / "kiket-definitions-engineering.bundle"
    if not bundle.is_file():
        return None
    from app.services.config_sources import read_git_tree

    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "engineering.git"
        subprocess.run(["git", "clone", "--quiet", "--bare", "--", str(bundle), str(clone)], check=True,
                       capture_output=True, timeout=60)
        return read_git_tree(clone, "main")


def _profile(files: dict[str, bytes], top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    load_revision(files)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _report(name: str, files: dict[str, bytes], runs: int) -> bool:
    result = load_revision(files)
    measured = _median_ms(lambda: load_revision(files), runs)
    floor = _median_ms(_floor(files), runs)
    ratio = measured / floor if floor else float("inf")
    passed = measured < GOAL_SECONDS * 1000 and ratio <= GOAL_RATIO
    print(f"{name}: {len(files)} files, {sum(map(len, files.values())) // 1024} KiB, ok={result.ok}, "
          f"{result.summary()}")
    print(f"  load_revision  {measured:9.1f} ms (median of {runs})")
    print(f"  floor          {floor:9.1f} ms (CSafeLoader parse of the same YAML files)")
    print(f"  ratio          {ratio:9.2f}x   goal: < {GOAL_SECONDS * 1000:.0f} ms and <= {GOAL_RATIO:.0f}x floor"
          f"  -> {'PASS' if passed else 'MISS'}")
    if os.environ.get("KIKET_BENCH_PROFILE"):
        print(_profile(files))
    return passed


def main() -> None:
    runs = int(os.environ.get("KIKET_BENCH_RUNS", "5"))
    engineering = _engineering_files()
    if engineering is None:
        print(f"engineering fixture: skipped ({FIXTURES} not found)")
    else:
        _report("engineering fixture (main)", engineering, runs * 4)
    _report("generated repository", generate(), runs)


if __name__ == "__main__":
    main()
