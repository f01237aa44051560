"""Quality on the synthetic bank, time split: every model against popularity, and the fusion.

Protocol: ``generate_bank(customers, seed, end_date)``; time split of the event log at the
cutoff below which 80% of the events fall; the test set is every (customer, product) newly taken
up (apply/purchase/hold) after the cutoff, excluding products the customer had taken up
before it; lists exclude those earlier take-ups and hold only ``active`` products. Each model's
hyper-parameters are chosen on a validation time split carved from the training events (its
last 20%), never on the test set; the fusion blends the tuned members with weights it tunes on
its own validation split of the training events.

Targets: every personalised model beats popularity on nDCG@10; the fusion beats its best member
on nDCG@10 and on catalogue coverage@10.

Usage::

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.synthetic_quality [--customers N] [--seed S]
        [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.synth.bank import generate_bank
from benchmarks.movielens import machine
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.evaluation.report import Report
from recommenders.evaluation.runner import evaluate_dataset
from recommenders.evaluation.splits import Split, time_split, validation_split

K = 10
END_DATE = dt.date(2026, 1, 1)
PERSONALISED = ("als", "bpr", "itemknn", "ease", "content", "lightfm")
GRIDS: dict[str, dict[str, list[Any]]] = {
    "popularity": {"by_segment": [True, False]},
    # One thread: implicit's multi-threaded solvers differ slightly from run to run.
    "als": {
        "factors": [32, 64],
        "regularization": [0.05, 1.0],
        "alpha": [0.25, 1.0],
        "num_threads": [1],
    },
    "bpr": {"factors": [32, 64], "learning_rate": [0.01, 0.05], "num_threads": [1]},
    "itemknn": {"similarity": ["bm25", "cosine"], "neighbours": [20, 50]},
    "ease": {"l2": [10.0, 50.0, 200.0, 1000.0], "binarize": [True, False]},
    "content": {"declared_weight": [0.25, 0.5, 2.0], "popularity_weight": [0.05, 0.5, 1.0]},
    "lightfm": {"components": [32], "epochs": [30]},
}


def generator_version() -> str:
    """The last commit touching the generator, marked when its files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "app/synth") or "unknown"
    return commit + (" (modified)" if git("status", "--porcelain", "--", "app/synth") else "")


def _grid(space: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*space.values())]


def tune_all(
    dataset: Dataset, split: Split, names: list[str], quick: bool, log: Any
) -> dict[str, dict[str, Any]]:
    """Per model, the grid candidate with the best nDCG@10 on a validation split of training."""
    validation = validation_split(split)
    tuned: dict[str, dict[str, Any]] = {}
    for name in names:
        candidates = _grid(GRIDS.get(name, {}))[: 1 if quick else None]
        if len(candidates) == 1:
            tuned[name] = candidates[0]
            continue
        scores = []
        for candidate in candidates:
            report = evaluate_dataset(
                dataset, [name], params={name: candidate}, split=validation, ks=[K]
            )
            scores.append(report.result(name).metrics[K]["ndcg"])
            log(f"  {name} {candidate}: validation nDCG@10 {scores[-1]:.4f}")
        tuned[name] = candidates[max(range(len(scores)), key=scores.__getitem__)]
        log(f"{name}: tuned {tuned[name]}")
    return tuned


def check_targets(report: Report, members: list[str]) -> dict[str, Any]:
    """The issue's targets, each with the numbers it compares."""
    at = {r.name: r.metrics[K] for r in report.results}
    best_member = max(members, key=lambda m: at[m]["ndcg"])
    beats: dict[str, Any] = {}
    for baseline in ("popularity", "popularity-global"):
        if baseline not in at:
            continue
        base = at[baseline]["ndcg"]
        beats[baseline] = {
            name: {"ndcg": at[name]["ndcg"], "baseline": base, "ok": at[name]["ndcg"] > base}
            for name in PERSONALISED
            if name in at
        }
    return {
        "personalised_beat_popularity": beats,
        "fusion_vs_best_member": {
            "best_member": best_member,
            "fusion_ndcg": at["fusion"]["ndcg"],
            "member_ndcg": at[best_member]["ndcg"],
            "fusion_coverage": at["fusion"]["coverage"],
            "member_coverage": at[best_member]["coverage"],
            "ok": at["fusion"]["ndcg"] > at[best_member]["ndcg"]
            and at["fusion"]["coverage"] > at[best_member]["coverage"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="synthetic bank quality benchmark")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synthetic"))
    parser.add_argument("--quick", action="store_true", help="first grid candidate only")
    parser.add_argument("--models", default=",".join(PERSONALISED))
    parser.add_argument(
        "--members", default="popularity,als,bpr,itemknn,ease,content", help="fusion members"
    )
    args = parser.parse_args(argv)
    log = print

    bank = generate_bank(args.customers, seed=args.seed, end_date=END_DATE)
    dataset = Dataset.from_frames(bank.customers, bank.products, bank.interactions, DatasetConfig())
    split = time_split(dataset.events, (dataset.n_customers, dataset.n_products), test_fraction=0.2)
    log(f"bank: {dataset.describe()}; split: {split.describe()}")
    names = [n for n in args.models.split(",") if n]
    members = [m for m in args.members.split(",") if m]
    tuned = tune_all(dataset, split, sorted({"popularity", *names, *members}), args.quick, log)
    fusion = {"members": members, "member_params": {m: tuned[m] for m in members}}
    report = evaluate_dataset(
        dataset, [*names, "fusion"], params={**tuned, "fusion": fusion}, split=split,
        ks=[5, 10, 20], progress=log,
    )  # fmt: skip
    # Global popularity too, for context: the tuned baseline above is per segment.
    global_report = evaluate_dataset(
        dataset, [], params={"popularity": {"by_segment": False}}, split=split, ks=[5, 10, 20]
    )
    global_row = global_report.result("popularity")
    global_row.name = "popularity-global"
    report.results.append(global_row)
    report.protocol.update(
        {"generator": f"generate_bank({args.customers}, seed={args.seed}, end_date={END_DATE})",
         "generator_version": generator_version(),
         "tuning": "validation time split of the training events (last 20%)",
         "machine": machine()}
    )  # fmt: skip
    paths = report.save(args.out)
    targets = check_targets(report, members)
    (args.out / "targets.json").write_text(json.dumps(targets, indent=2))
    log(report.to_markdown())
    log(json.dumps(targets, indent=2))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
