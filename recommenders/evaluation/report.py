"""Evaluation reports: every model against the popularity baseline; JSON, Markdown, a chart."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommenders.evaluation.metrics import METRICS

BASELINE = "popularity"
_LABELS = {
    "precision": "P",
    "recall": "R",
    "map": "MAP",
    "ndcg": "nDCG",
    "hit_rate": "HR",
    "coverage": "Cov",
    "diversity": "Div",
    "novelty": "Nov",
}


@dataclass
class ModelResult:
    """One model's numbers on one split: ``metrics[k][metric]``."""

    name: str
    algorithm: str
    params: dict[str, Any]
    metrics: dict[int, dict[str, float]]
    fit_seconds: float
    recommend_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Results of several models on one split, with the protocol that produced them."""

    protocol: dict[str, Any]
    ks: list[int]
    results: list[ModelResult]
    baseline: str = BASELINE

    @property
    def primary_k(self) -> int:
        """The k the summary table shows: 10 when evaluated, else the largest k."""
        return 10 if 10 in self.ks else max(self.ks)

    def result(self, name: str) -> ModelResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result for {name!r}; have {', '.join(r.name for r in self.results)}")

    def best(self, metric: str = "ndcg", k: int | None = None) -> ModelResult:
        """The result with the highest ``metric`` at ``k`` (default: the primary k)."""
        at = k or self.primary_k
        return max(self.results, key=lambda r: _finite(r.metrics[at][metric]))

    def frame(self, k: int | None = None) -> pd.DataFrame:
        """One row per model, one column per metric at ``k`` (default: the primary k)."""
        at = k or self.primary_k
        rows = {r.name: r.metrics[at] for r in self.results}
        return pd.DataFrame.from_dict(rows, orient="index")[list(METRICS)]

    # ---- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for result in data["results"]:
            result["metrics"] = {
                str(k): {m: _json_number(v) for m, v in row.items()}
                for k, row in result["metrics"].items()
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        results = [
            ModelResult(
                **{
                    **r,
                    "metrics": {
                        int(k): {m: float("nan") if v is None else float(v) for m, v in row.items()}
                        for k, row in r["metrics"].items()
                    },
                }
            )
            for r in data["results"]
        ]
        return cls(data["protocol"], [int(k) for k in data["ks"]], results, data["baseline"])

    def to_markdown(self) -> str:
        """A summary table at the primary k (with the lift over the baseline) and one per k."""
        k = self.primary_k
        base = next((r for r in self.results if r.name == self.baseline), None)
        lines = [f"### Every model against {self.baseline} (k = {k})", ""]
        header = ["model", *(f"{_LABELS[m]}@{k}" for m in METRICS), "nDCG vs baseline", "fit s"]
        lines += [_row(header), _row(["---"] * len(header))]
        for r in sorted(self.results, key=lambda r: -_finite(r.metrics[k]["ndcg"])):
            lift = "—"
            if base is not None and r is not base and base.metrics[k]["ndcg"] > 0:
                lift = f"{r.metrics[k]['ndcg'] / base.metrics[k]['ndcg'] - 1:+.0%}"
            cells = [_fmt(r.metrics[k][m]) for m in METRICS]
            lines.append(_row([r.name, *cells, lift, f"{r.fit_seconds:.1f}"]))
        lines += ["", "Protocol: " + ", ".join(f"{a}={b}" for a, b in self.protocol.items()), ""]
        for at in self.ks:
            if at == k:
                continue
            lines += [f"#### k = {at}", ""]
            header = ["model", *(f"{_LABELS[m]}@{at}" for m in METRICS)]
            lines += [_row(header), _row(["---"] * len(header))]
            for r in self.results:
                lines.append(_row([r.name, *(_fmt(r.metrics[at][m]) for m in METRICS)]))
            lines.append("")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """A PNG of each metric against k, one line per model."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 4, figsize=(16, 7))
        for ax, metric in zip(axes.ravel(), METRICS, strict=True):
            for r in self.results:
                values = [r.metrics[k][metric] for k in self.ks]
                style = "--" if r.name == self.baseline else "-"
                ax.plot(self.ks, values, style, marker="o", label=r.name)
            ax.set_title(metric)
            ax.set_xlabel("k")
            ax.set_xticks(self.ks)
            ax.grid(alpha=0.3)
        axes.ravel()[0].legend(fontsize="small")
        fig.suptitle(f"{self.protocol.get('kind', 'split')} split: metrics against k")
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and ``report.png`` into ``directory``."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": root / "report.json",
            "markdown": root / "report.md",
            "chart": root / "report.png",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, default=str))
        paths["markdown"].write_text(self.to_markdown())
        self.plot(paths["chart"])
        return paths


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _json_number(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _fmt(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def export_recommendations(
    path: str | Path,
    customer_ids: np.ndarray,
    product_ids: np.ndarray,
    indices: np.ndarray,
    scores: np.ndarray,
) -> Path:
    """Write ranked lists as CSV ``customer_id,rank,product_id,score`` (rank from 1).

    ``customer_ids`` are the external IDs of the list rows, ``product_ids`` the external IDs
    of the whole catalogue (by index); padding slots (index -1) are left out.
    """
    n, k = indices.shape
    keep = indices >= 0
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customer_ids), k)[keep.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n)[keep.ravel()],
            "product_id": np.asarray(product_ids)[indices[keep]],
            "score": scores[keep],
        }
    )
    out = Path(path)
    frame.to_csv(out, index=False)
    return out
