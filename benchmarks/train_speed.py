"""Training speed: finrec's ALS against calling ``implicit`` directly on the same matrix.

Protocol
--------
1. Generate the synthetic bank (``app.synth.generate_bank``; default 1,000,000 customers).
2. Build the finrec :class:`~recommenders.dataset.Dataset` from its frames (data preparation,
   timed and reported separately; it is not part of either fit).
3. Alternate, ``--repeats`` times: ``implicit.cpu.als.AlternatingLeastSquares(...).fit(M)`` on
   the dataset's CSR matrix ``M``, then finrec's ``ALSRecommender(...).fit(dataset)``, both with
   the same parameters (factors, regularization, alpha, iterations, CG solver, seed, threads,
   float32) and BLAS held to one thread. Alternating spreads any background load over both.
4. Report the median (and every run) of each and the ratio of medians; check that both produced
   the same factors (same seed, same matrix), which shows they did the same work.
5. Separately, time saving the finrec artifact (npz + sha256 manifest).

Writes a JSON result (``--out``) and prints it. Run from the repository root::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/train_speed.py \\
        --customers 1000000 --out benchmarks/results/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from threadpoolctl import threadpool_limits

from recommenders.dataset import Dataset, DatasetConfig
from recommenders.implicit_models import ALSParams, ALSRecommender


def _implicit_fit(matrix: Any, params: ALSParams) -> tuple[float, np.ndarray]:
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            use_cg=params.use_cg,
            random_state=params.random_state,
            num_threads=params.num_threads,
            dtype=np.float32,
        )
        start = time.perf_counter()
        model.fit(matrix, show_progress=False)
        elapsed = time.perf_counter() - start
    return elapsed, np.asarray(model.item_factors)


def _finrec_fit(dataset: Dataset, params: ALSParams) -> tuple[float, ALSRecommender]:
    model = ALSRecommender(params)
    start = time.perf_counter()
    model.fit(dataset)
    return time.perf_counter() - start, model


def run(customers: int, repeats: int, seed: int, params: ALSParams) -> dict[str, Any]:
    from app.synth.bank import generate_bank

    result: dict[str, Any] = {"customers": customers, "seed": seed}
    start = time.perf_counter()
    bank = generate_bank(customers, seed=seed)
    result["generate_seconds"] = round(time.perf_counter() - start, 2)
    result["events"] = len(bank.interactions)

    start = time.perf_counter()
    dataset = Dataset.from_frames(bank.customers, bank.products, bank.interactions, DatasetConfig())
    result["data_preparation_seconds"] = round(time.perf_counter() - start, 2)
    del bank
    matrix = dataset.interactions
    result["matrix"] = {"shape": list(matrix.shape), "nnz": int(matrix.nnz)}

    implicit_runs: list[float] = []
    finrec_runs: list[float] = []
    model: ALSRecommender | None = None
    same_factors = True
    for _ in range(repeats):
        seconds, item_factors = _implicit_fit(matrix, params)
        implicit_runs.append(round(seconds, 3))
        seconds, model = _finrec_fit(dataset, params)
        finrec_runs.append(round(seconds, 3))
        same_factors &= bool(np.allclose(item_factors, model.product_factors, atol=1e-4))
    if model is None:  # --repeats 0: data preparation only
        return result

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model.save(Path(tmp) / "als")
        result["artifact_save_seconds"] = round(time.perf_counter() - start, 2)

    implicit_median = statistics.median(implicit_runs)
    finrec_median = statistics.median(finrec_runs)
    result.update(
        {
            "params": params.model_dump(),
            "implicit_fit_seconds": implicit_runs,
            "finrec_fit_seconds": finrec_runs,
            "implicit_fit_median": implicit_median,
            "finrec_fit_median": finrec_median,
            "ratio_finrec_to_implicit": round(finrec_median / implicit_median, 3),
            "same_factors": same_factors,
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "implicit": metadata.version("implicit"),
                "numpy": np.__version__,
                "load_average_at_end": list(os.getloadavg()),
            },
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="0 = data preparation only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = ALSParams(factors=args.factors, iterations=args.iterations, num_threads=args.threads)
    result = run(args.customers, args.repeats, args.seed, params)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
