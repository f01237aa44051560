"""The evaluation runner and its report on a tiny bank."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommenders.errors import UnknownAlgorithmError
from recommenders.evaluation.report import Report, export_recommendations
from recommenders.evaluation.runner import SplitSpec, evaluate_models
from tests.recommenders.conftest import tiny_frames


def _frames_with_later_takeups() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers, products, events = tiny_frames()
    # After the training window every customer takes up the block product they lacked.
    later = []
    for i, cid in enumerate(customers["customer_id"]):
        block = 0 if cid.startswith("a") else 3
        missing = {0: 2, 1: 1, 2: 0}[i % 3] + block
        later.append(
            {
                "customer_id": cid,
                "product_id": f"P{missing}",
                "event_type": "purchase",
                "occurred_at": pd.Timestamp("2024-03-01", tz="UTC"),
            }
        )
    return customers, products, pd.concat([events, pd.DataFrame(later)], ignore_index=True)


@pytest.fixture(scope="module")
def report() -> Report:
    customers, products, events = _frames_with_later_takeups()
    return evaluate_models(
        customers,
        products,
        events,
        ["itemknn", "content"],
        split=SplitSpec(kind="time", cutoff="2024-02-01T00:00:00Z"),
        ks=[1, 3],
    )


def test_every_model_is_scored_against_popularity(report: Report) -> None:
    assert [r.name for r in report.results] == ["popularity", "itemknn", "content"]
    assert report.protocol["kind"] == "time"
    assert report.protocol["test_customers"] == 24
    # The pair partner is the only eligible product of the customer's block: a perfect score.
    assert report.result("itemknn").metrics[1]["precision"] == pytest.approx(1.0)
    assert report.best("ndcg", 3).metrics[3]["ndcg"] == pytest.approx(1.0)
    for result in report.results:
        assert set(result.metrics) == {1, 3}


def test_report_writes_json_markdown_and_chart(report: Report, tmp_path: Path) -> None:
    paths = report.save(tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    again = Report.from_dict(data)
    assert again.result("content").metrics[3]["ndcg"] == pytest.approx(
        report.result("content").metrics[3]["ndcg"]
    )
    markdown = paths["markdown"].read_text()
    assert "Every model against popularity (k = 3)" in markdown
    assert "| itemknn |" in markdown
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = report.frame(3)
    assert list(frame.index) == ["popularity", "itemknn", "content"]
    assert not math.isnan(frame.loc["itemknn", "coverage"])


def test_unknown_algorithm_fails_before_training() -> None:
    customers, products, events = _frames_with_later_takeups()
    with pytest.raises(UnknownAlgorithmError, match="nosuch"):
        evaluate_models(customers, products, events, ["nosuch"])


def test_a_split_without_test_customers_is_refused() -> None:
    customers, products, events = tiny_frames()
    with pytest.raises(ValueError, match="no customer with a test product"):
        evaluate_models(
            customers, products, events, [], split=SplitSpec(cutoff="2030-01-01T00:00:00Z")
        )


def test_export_recommendations_skips_padding(tmp_path: Path) -> None:
    path = export_recommendations(
        tmp_path / "recs.csv",
        np.array(["c1", "c2"]),
        np.array(["p0", "p1", "p2"]),
        np.array([[2, 0], [1, -1]]),
        np.array([[0.9, 0.5], [0.7, -np.inf]], dtype=np.float32),
    )
    frame = pd.read_csv(path)
    assert frame.to_dict("list") == {
        "customer_id": ["c1", "c1", "c2"],
        "rank": [1, 2, 1],
        "product_id": ["p2", "p0", "p1"],
        "score": pytest.approx([0.9, 0.5, 0.7]),
    }
