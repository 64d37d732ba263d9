"""Compare two evaluation results.json files value for value (mean and per-query metrics,
fitted fusion weights): the check that a change left every number as it was.

    python benchmarks/compare_results.py BEFORE/results.json AFTER/results.json

Exits 1 and lists the differences when any value differs or a result is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def indexed(path: Path) -> tuple[dict[tuple[str, str, str], dict[str, Any]], dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    results = {(r["dataset"], r["task"], r["pipeline"]): r for r in data["results"]}
    return results, data["config"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    before, before_config = indexed(args.before)
    after, after_config = indexed(args.after)
    problems = [f"only in one file: {key}" for key in before.keys() ^ after.keys()]
    means = per_query = 0
    for key in sorted(before.keys() & after.keys()):
        old, new = before[key], after[key]
        if (old["skipped"], old["queries"]) != (new["skipped"], new["queries"]):
            problems.append(f"{key}: skipped or query count differs")
        for metric, value in old["metrics"].items():
            means += 1
            if new["metrics"].get(metric) != value:
                problems.append(f"{key} {metric}: {value} -> {new['metrics'].get(metric)}")
        for query, values in old["per_query"].items():
            for metric, value in values.items():
                per_query += 1
                if new["per_query"].get(query, {}).get(metric) != value:
                    problems.append(f"{key} query {query} {metric} differs")
    weights_same = before_config.get("fusion_weights") == after_config.get("fusion_weights")
    if not weights_same:
        problems.append("fitted fusion weights differ")
    for problem in problems[:50]:
        print(problem)
    print(
        f"{len(before)} results, {means} mean and {per_query} per-query metric values "
        f"compared, {len(problems)} differences; fusion weights identical: {weights_same}"
    )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
