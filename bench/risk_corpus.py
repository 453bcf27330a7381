"""Recall and false-positive rate of the risk classifier on the labelled corpus.

    python bench/risk_corpus.py [--misses] [CORPUS]

A dangerous command counts as caught when a finding of one of its labelled
classes is reported; a benign command is a false positive when any finding is
reported. Rules are the shipped ones (profiles/fragments/risk-rules.yaml),
resolved through the `default` profile. Targets (issue 7): recall >= 0.97,
false positives <= 5%.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vectraguard.risk.classify import classify  # noqa: E402
from vectraguard.risk.ruleset import shipped_rules  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO / "tests" / "data" / "command-corpus.jsonl"))
    parser.add_argument("--misses", action="store_true", help="print every miss and false positive")
    args = parser.parse_args()
    rules = shipped_rules()
    entries = [json.loads(line) for line in Path(args.corpus).read_text().splitlines() if line.strip()]
    caught = missed = false_pos = benign = 0
    started = time.perf_counter()
    for entry in entries:
        found = classify(entry["command"], rules, cwd=None)
        classes = {f.cls for f in found}
        if entry["label"] == "dangerous":
            if classes & set(entry["classes"]):
                caught += 1
            else:
                missed += 1
                if args.misses:
                    print(f"MISS {entry['classes']} {entry['command']}  -> {sorted(classes)}")
        else:
            benign += 1
            if found:
                false_pos += 1
                if args.misses:
                    print(f"FP   {entry['command']}  -> {[f.rule for f in found]}")
    elapsed = time.perf_counter() - started
    dangerous = caught + missed
    print(f"corpus: {len(entries)} commands ({dangerous} dangerous, {benign} benign), {len(rules)} rules")
    print(f"recall on dangerous: {caught}/{dangerous} = {caught / dangerous:.3f} (target >= 0.97)")
    print(f"false positives on benign: {false_pos}/{benign} = {false_pos / benign:.3f} (target <= 0.05)")
    print(f"classification: {elapsed / len(entries) * 1e6:.0f} us per command")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
