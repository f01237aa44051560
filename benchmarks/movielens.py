"""MovieLens-100k through finrec's own path, with the Recommenders benchmark protocol.

Protocol (as the benchmark states it): each item's ratings are split 75/25 at random with seed
42; every test rating counts as relevant; k = 10; products a user rated in training are removed
from that user's list; MAP divides by the number of relevant items. Users are evaluated when
they have at least one test rating.

finrec's path: ``u.data`` ratings become ``purchase`` events, ``u.item`` genres become product
tags (the first genre is the category), ``u.user`` gives customer features (age, gender,
occupation) → ``Dataset.from_frames`` → ``fit`` → ``recommend`` with training pairs excluded.
Hyper-parameters are tuned on a validation split carved from the training events with the same
protocol (seed 7); the test set is used once, for the final numbers.

The top-10 lists of every strategy are exported as CSV next to the test pairs, and the metrics
are recomputed from those files by :func:`recompute_from_files`, a separate plain-Python
implementation, so the numbers can be checked without finrec.

Usage::

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.movielens --path data/ml-100k [--out DIR] [--quick]

The MovieLens files may not be redistributed; fetch them into an ignored folder.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommenders.base import Recommender
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.evaluation.metrics import evaluate_lists, self_information
from recommenders.evaluation.report import export_recommendations
from recommenders.evaluation.splits import Split, stratified_split, validation_split
from recommenders.fusion import FusionRecommender
from recommenders.registry import get_algorithm

U_DATA_MD5 = "6e47046882bad158b0efbb84cd5cb987"
GENRES = (
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary",
    "drama", "fantasy", "film-noir", "horror", "musical", "mystery", "romance", "sci-fi",
    "thriller", "war", "western",
)  # fmt: skip
K = 10
PUBLISHED = {  # Recommenders' published MovieLens-100k table (nDCG@10, P@10)
    "BiVAE": (0.475, 0.412),
    "BPR": (0.442, 0.388),
    "SAR": (0.382, 0.331),
    "most popular": (0.248, 0.224),
}

# Candidate hyper-parameters, searched on the validation split only.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "ease": {"l2": [200.0, 300.0, 500.0, 700.0, 1000.0]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [20.0, 50.0, 100.0, 200.0],
        "alpha": [0.5, 1.0, 2.0],
        "iterations": [15],
    },
    "itemknn": {"similarity": ["bm25", "cosine"], "neighbours": [50, 100, 200, 400]},
    "bpr": {"factors": [64, 128], "learning_rate": [0.005, 0.01], "iterations": [50, 100]},
    "popularity": {"by_segment": [False, True]},
    "content": {"declared_weight": [0.0, 0.5]},
}
# Fusion variants; the one with the best validation nDCG@10 (from its own tuning) is tested.
FUSION_VARIANTS: list[dict[str, Any]] = [
    {"normalisation": "minmax"},
    {"normalisation": "zscore"},
    {"normalisation": "rank"},
    {"method": "rrf"},
]
QUICK_GRIDS: dict[str, dict[str, list[Any]]] = {
    "ease": {"l2": [300.0]},
    "als": {"factors": [64], "regularization": [1.0], "alpha": [2.0], "iterations": [15]},
    "itemknn": {"similarity": ["bm25"], "neighbours": [100]},
    "bpr": {"factors": [64], "learning_rate": [0.05], "iterations": [100]},
    "popularity": {"by_segment": [False]},
    "content": {"declared_weight": [0.5]},
}


def machine() -> str:
    """CPU model and core count, for the record beside the numbers."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def load_movielens(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three import-contract frames from ``u.user``, ``u.item`` and ``u.data``."""
    data_file = path / "u.data"
    digest = md5_file(data_file)
    if digest != U_DATA_MD5:
        raise SystemExit(f"{data_file} has md5 {digest}, expected {U_DATA_MD5}: not ML-100k")
    ratings = pd.read_csv(data_file, sep="\t", names=["user", "item", "rating", "ts"])
    interactions = pd.DataFrame(
        {
            "customer_id": ratings["user"].astype(str),
            "product_id": ratings["item"].astype(str),
            "event_type": "purchase",
            "occurred_at": ratings["ts"].astype(np.int64),
        }
    )
    items = pd.read_csv(
        path / "u.item", sep="|", encoding="latin-1", header=None,
        names=["item", "title", "release", "video", "url", *GENRES],
    )  # fmt: skip
    flags = items[list(GENRES)].to_numpy(dtype=bool)
    tags = [[g for g, on in zip(GENRES, row, strict=True) if on] for row in flags]
    products = pd.DataFrame(
        {
            "product_id": items["item"].astype(str),
            "name": items["title"],
            "category": [t[0] if t else "unknown" for t in tags],
            "risk_level": "R1",
            "tags": tags,
        }
    )
    users = pd.read_csv(
        path / "u.user", sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"]
    )
    customers = pd.DataFrame(
        {
            "customer_id": users["user"].astype(str),
            "age": users["age"].astype(int),
            "segment": users["occupation"],
            "gender": users["gender"],
        }
    )
    return customers, products, interactions


def _fit_and_score(
    name: str, params: Mapping[str, Any], dataset: Dataset, split: Split
) -> tuple[Recommender, np.ndarray, np.ndarray, dict[str, float], float]:
    model = get_algorithm(name)(**dict(params))
    start = time.perf_counter()
    train = dataset.with_events(split.train)
    model.fit(train)
    seconds = time.perf_counter() - start
    customers = split.test_customers
    indices, scores = model.recommend(customers, K, exclude=split.exclude[customers])
    metrics = evaluate_lists(
        indices,
        split.test[customers],
        [K],
        categories=dataset.product_category,
        information=self_information(train.interactions),
    )[K]
    return model, indices, scores, metrics, seconds


def _grid(space: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*space.values())]


def tune(
    name: str, space: Mapping[str, Iterable[Any]], dataset: Dataset, validation: Split, log: Any
) -> tuple[dict[str, Any], float]:
    """The candidate with the best validation nDCG@10."""
    best: tuple[dict[str, Any], float] = ({}, -1.0)
    for candidate in _grid(space):
        ndcg = _fit_and_score(name, candidate, dataset, validation)[3]["ndcg"]
        log(f"  {name} {candidate}: validation nDCG@10 {ndcg:.4f}")
        if ndcg > best[1]:
            best = (candidate, ndcg)
    return best


def choose_fusion(
    names: list[str],
    tuned: dict[str, dict[str, Any]],
    dataset: Dataset,
    split: Split,
    quick: bool,
    log: Any,
) -> dict[str, Any]:
    """Fusion params whose own validation nDCG@10 is best (the test set is not read).

    The fusion tunes its weights on a stratified validation split of the training events
    (ratio 0.75, seed 7: the same split the members were tuned on).
    """
    base = {
        "members": names,
        "member_params": tuned,
        "validation": "stratified",
        "validation_fraction": 0.25,
        "seed": 7,
        # This benchmark scores accuracy only, so blends may trade coverage for nDCG.
        "keep_coverage": False,
        "coverage_weight": 0.0,
    }
    train = dataset.with_events(split.train)
    best: tuple[dict[str, Any], float] = (base, -1.0)
    for variant in FUSION_VARIANTS[: 1 if quick else None]:
        params = {**base, **variant}
        model = FusionRecommender(**params).fit(train)
        log(
            f"  fusion {variant}: weights {model.member_weights()}, "
            f"validation nDCG@10 {model.validation_ndcg:.4f}"
        )
        if model.validation_ndcg > best[1]:
            best = (params, model.validation_ndcg)
    return best[0]


def recompute_from_files(recommendations_csv: Path, test_csv: Path, k: int = K) -> dict[str, float]:
    """Precision, recall, MAP and nDCG at ``k`` from exported files, in plain Python.

    ``test_csv`` holds ``customer_id,product_id`` relevant pairs; ``recommendations_csv`` holds
    ``customer_id,rank,product_id,score``. Every customer in the test file is averaged; one
    without a list scores zero. MAP divides by the number of relevant items.
    """
    relevant: dict[str, set[str]] = defaultdict(set)
    for row in pd.read_csv(test_csv, dtype=str).itertuples(index=False):
        relevant[row.customer_id].add(row.product_id)
    ranked: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in pd.read_csv(
        recommendations_csv, dtype={"customer_id": str, "product_id": str}
    ).itertuples(index=False):
        ranked[row.customer_id].append((int(row.rank), row.product_id))
    totals = {"precision": 0.0, "recall": 0.0, "map": 0.0, "ndcg": 0.0}
    for customer, truth in relevant.items():
        items = [p for _, p in sorted(ranked.get(customer, []))][:k]
        hits = 0
        ap = dcg = 0.0
        for position, product in enumerate(items, start=1):
            if product in truth:
                hits += 1
                ap += hits / position
                dcg += 1.0 / math.log2(position + 1)
        idcg = sum(1.0 / math.log2(p + 1) for p in range(1, min(len(truth), k) + 1))
        totals["precision"] += hits / k
        totals["recall"] += hits / len(truth)
        totals["map"] += ap / len(truth)
        totals["ndcg"] += dcg / idcg
    return {m: v / len(relevant) for m, v in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--path", type=Path, required=True, help="folder with u.data etc.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/movielens"))
    parser.add_argument("--quick", action="store_true", help="one candidate per model")
    parser.add_argument(
        "--models", default="popularity,content,itemknn,bpr,als,ease",
        help="comma-separated members to tune; fusion blends them",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = print

    customers, products, interactions = load_movielens(args.path)
    dataset = Dataset.from_frames(customers, products, interactions, DatasetConfig())
    shape = (dataset.n_customers, dataset.n_products)
    split = stratified_split(dataset.events, shape, ratio=0.75, seed=42, by="product")
    validation = validation_split(split, seed=7)
    log(
        f"train {len(split.train)} ratings, test {split.test.nnz} ratings, "
        f"{len(split.test_customers)} test users; validation {validation.test.nnz} ratings"
    )

    grids = QUICK_GRIDS if args.quick else GRIDS
    names = [n for n in args.models.split(",") if n]
    tuned: dict[str, dict[str, Any]] = {}
    validation_ndcg: dict[str, float] = {}
    for name in names:
        tuned[name], validation_ndcg[name] = tune(
            name, grids.get(name, {}), dataset, validation, log
        )
        log(f"{name}: tuned {tuned[name]} (validation nDCG@10 {validation_ndcg[name]:.4f})")
    fusion_params = choose_fusion(names, tuned, dataset, split, args.quick, log)

    test_users = dataset.customer_ids.to_external(split.test_customers)
    test_pairs = split.test.tocoo()
    test_csv = args.out / "test_pairs.csv"
    pd.DataFrame({
        "customer_id": dataset.customer_ids.to_external(test_pairs.row),
        "product_id": dataset.product_ids.to_external(test_pairs.col),
    }).to_csv(test_csv, index=False)  # fmt: skip

    rows: dict[str, dict[str, Any]] = {}
    for name, params in [*tuned.items(), ("fusion", fusion_params)]:
        model, indices, scores, metrics, seconds = _fit_and_score(name, params, dataset, split)
        csv = export_recommendations(
            args.out / f"top10_{name}.csv", test_users, dataset.product_ids.external,
            indices, scores,
        )  # fmt: skip
        recorded = dict(params)
        if isinstance(model, FusionRecommender):
            recorded["weights"] = model.member_weights()
            validation_ndcg[name] = model.validation_ndcg
        rows[name] = {
            "params": recorded,
            "fit_seconds": round(seconds, 2),
            "metrics": metrics,
            "recomputed_from_csv": recompute_from_files(csv, test_csv),
            "validation_ndcg": validation_ndcg.get(name),
        }
        log(
            f"{name}: test nDCG@10 {metrics['ndcg']:.4f} P@10 {metrics['precision']:.4f} "
            f"MAP@10 {metrics['map']:.4f} R@10 {metrics['recall']:.4f} "
            f"(recomputed nDCG@10 {rows[name]['recomputed_from_csv']['ndcg']:.4f})"
        )

    best = max(rows, key=lambda n: rows[n]["metrics"]["ndcg"])
    result = {
        "protocol": {
            "data": "MovieLens-100k u.data (md5 " + U_DATA_MD5 + "), u.item, u.user",
            "split": "per item, 75% of each item's ratings train / 25% test at random, seed 42",
            "relevance": "every test rating",
            "k": K,
            "exclude": "products the user rated in training",
            "map": "divides by #relevant",
            "tuning": "validation split carved from training (same protocol, seed 7)",
            "users_evaluated": len(split.test_customers),
            "test_ratings": int(split.test.nnz),
        },
        "machine": machine(),
        "published": PUBLISHED,
        "results": rows,
        "best": best,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=str))
    log(f"best: {best} nDCG@10 {rows[best]['metrics']['ndcg']:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
