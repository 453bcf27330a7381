"""Recall and false-positive rate of the risk judgement on labelled corpora.

    python bench/risk_corpus.py [--misses] [CORPUS...]

Without arguments: every corpus in tests/data (command-corpus.jsonl, the
shipped one the rules were written with, and heldout-*.jsonl, written by
people who had not seen the rules; see DEVELOPERS.md). Each line of a corpus
is {"command", "label": "dangerous"|"benign", "classes", "why"}.

A line is judged as `vectraguard check` judges it: findings from the shipped
rules, decided by the `default` profile's `risk.decisions`. A dangerous line
is caught when the decision is not `allow`; a benign line is a false positive
when it is (issue 13). The figures a person reads first are those; the older
"a finding of a labelled class" figure is printed beside them. Cost is the
median, and the 99th percentile, of the time to judge one line (µs).
Targets (issue 13): recall >= 0.99 on the shipped corpus and >= 0.97 on a
held-out one, false positives <= 3 % on both, median < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vectraguard.config import profiles
from vectraguard.risk.classify import classify
from vectraguard.risk.decide import decide
from vectraguard.risk.ruleset import rules_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", metavar="CORPUS")
    parser.add_argument("--misses", action="store_true", help="print every miss and false positive")
    args = parser.parse_args()
    data = REPO / "tests" / "data"
    paths = [Path(p) for p in args.corpora] or [data / "command-corpus.jsonl", *sorted(data.glob("heldout-*.jsonl"))]
    profile = profiles.resolve("default", [], profiles.Sources())
    rules = rules_of(profile)
    print(f"{len(rules)} rules, judged under profile default")
    for path in paths:
        score(path, rules, profile, args.misses)
    return 0


def score(path: Path, rules: tuple, profile: profiles.ResolvedProfile, misses: bool) -> None:  # type: ignore[type-arg]
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    caught = missed = by_class = false_pos = benign = 0
    costs: list[float] = []
    for entry in entries:
        started = time.perf_counter()
        found = classify(entry["command"], rules, cwd=None)
        verdict = decide(found, profile).verdict
        costs.append(time.perf_counter() - started)
        if entry["label"] == "dangerous":
            by_class += bool({f.cls for f in found} & set(entry["classes"]))
            if verdict != "allow":
                caught += 1
            else:
                missed += 1
                if misses:
                    print(f"MISS {entry['classes']} {entry['command']!r}")
        else:
            benign += 1
            if verdict != "allow":
                false_pos += 1
                if misses:
                    print(f"FP   {entry['command']!r}  -> {[f.rule for f in found]}")
    dangerous = caught + missed
    costs.sort()
    print(f"{path.name}: {len(entries)} lines ({dangerous} dangerous, {benign} benign)")
    print(f"  recall (not allowed):         {caught}/{dangerous} = {caught / max(dangerous, 1):.3f}")
    print(f"  false positives (not allowed): {false_pos}/{benign} = {false_pos / max(benign, 1):.3f}")
    print(f"  (a finding of a labelled class: {by_class}/{dangerous} = {by_class / max(dangerous, 1):.3f})")
    print(f"  cost per line: median {statistics.median(costs) * 1e6:.0f} us, "
          f"p99 {costs[int(len(costs) * 0.99)] * 1e6:.0f} us")


if __name__ == "__main__":
    raise SystemExit(main())
