"""Definitions: rules, change log, the in-memory book of running experiments, offline replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.schemas.experiments import ExperimentCreate, ExperimentUpdate, VariantCreate
from app.services.experiments import definitions as D
from app.services.experiments.assignment import ExperimentBook
from app.services.experiments.errors import (
    ExperimentConflict,
    ExperimentNotFound,
    InvalidExperiment,
)
from app.services.experiments.simulate import ArmSpec, arm_specs, simulate_dataset
from recommenders.dataset import Dataset


def arms(*roles: str) -> list[dict[str, Any]]:
    return [
        {"name": f"v{i}", "role": role, "weight": 1, "strategy": "popularity"}
        for i, role in enumerate(roles)
    ]


def make(key: str = "exp", **overrides: Any) -> ExperimentCreate:
    body = {"key": key, "salt": "s", "variants": arms("control", "treatment"), **overrides}
    return ExperimentCreate.model_validate(body)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (("treatment", "treatment"), "exactly one"),
        (("control", "control"), "exactly one"),
        (("control", "holdout", "holdout"), "at most one holdout"),
        (("control",), "at least two"),
    ],
)
def test_invalid_arms_are_refused(roles: tuple[str, ...], message: str) -> None:
    variants = [VariantCreate.model_validate(v) for v in arms(*roles)]
    with pytest.raises(InvalidExperiment, match=message):
        D.check_variants(variants)


def test_duplicate_names_are_refused() -> None:
    variants = [VariantCreate.model_validate(v) for v in arms("control", "treatment")]
    variants[1] = variants[1].model_copy(update={"name": "v0"})
    with pytest.raises(InvalidExperiment, match="unique"):
        D.check_variants(variants)


def test_started_experiments_keep_their_arms(session: Session) -> None:
    D.create_experiment(session, make(), actor="ana")
    D.update_experiment(session, "exp", ExperimentUpdate(salt="t"), actor="ana")
    D.change_status(session, "exp", "start", actor="ben")
    with pytest.raises(ExperimentConflict, match="only description and traffic"):
        D.update_experiment(
            session,
            "exp",
            ExperimentUpdate.model_validate({"variants": arms("control", "holdout")}),
        )
    with pytest.raises(ExperimentConflict, match="pause or stop"):
        D.update_experiment(session, "exp", ExperimentUpdate(traffic=0))
    D.update_experiment(session, "exp", ExperimentUpdate(traffic=0.3, description="wider"))
    D.change_status(session, "exp", "stop")
    with pytest.raises(ExperimentConflict, match="stopped"):
        D.update_experiment(session, "exp", ExperimentUpdate(traffic=0.5))
    with pytest.raises(ExperimentNotFound):
        D.change_status(session, "nope", "start")
    log = D.changes_of(session, D.get_experiment(session, "exp"))
    assert [(c.action, c.actor) for c in log] == [
        ("created", "ana"),
        ("updated", "ana"),
        ("start", "ben"),
        ("updated", None),
        ("stop", None),
    ]
    assert log[0].changes["salt"] == "s"
    assert log[1].changes == {"salt": ["s", "t"]}
    assert log[3].changes == {"traffic": [1.0, 0.3], "description": [None, "wider"]}


def test_book_holds_running_experiments_only(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        D.create_experiment(session, make("a", placements=["home"]))
        D.create_experiment(session, make("b", placements=["offers"]))
        D.change_status(session, "a", "start")
        session.commit()
    book = ExperimentBook(session_factory)
    assert book.assign("c1", "home") is None  # nothing loaded before the first refresh
    assert book.refresh()
    assert [p.key for p in book.current] == ["a"]
    assigned = book.assign("c1", "home")
    assert assigned is not None and assigned.experiment == "a"
    assert book.assign("c1", "offers") is None
    assert ExperimentBook(None).refresh() is False


def test_replay_compares_every_arm_on_the_same_window(session: Session) -> None:
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)], "risk_class": "C5"})
    products = pd.DataFrame(
        {
            "product_id": ["p1", "p2", "p3", "p4"],
            "name": ["a", "b", "c", "d"],
            "category": ["fund", "fund", "deposit", "deposit"],
            "risk_level": ["R1", "R2", "R1", "R1"],
        }
    )
    rows = []
    for i in range(6):
        rows.append((f"c{i}", "p1", "purchase", f"2026-01-0{1 + i % 3}T00:00:00Z"))
        rows.append((f"c{i}", "p3" if i % 2 else "p2", "purchase", "2026-02-01T00:00:00Z"))
    interactions = pd.DataFrame(
        rows, columns=["customer_id", "product_id", "event_type", "occurred_at"]
    )
    dataset = Dataset.from_frames(customers, products, interactions)
    specs = [
        ArmSpec("control", "control", "popularity", {}, 1),
        ArmSpec("wide", "treatment", "popularity", {}, 3),
    ]
    result = simulate_dataset("exp", dataset, specs, cutoff=pd.Timestamp("2026-01-15", tz="UTC"))
    control, wide = result.arms
    assert result.protocol["test_customers"] == 6
    # A 3-item list always holds the one new take-up (p2 or p3); one item catches half of them.
    assert wide.metrics["hit_rate"] == 1.0
    assert control.metrics["hit_rate"] == 0.5
    assert wide.difference["hit_rate"]["difference"] == pytest.approx(0.5)
    assert result.to_json()["arms"][1]["difference_vs_control"]["hit_rate"]["ci_low"] > 0

    D.create_experiment(session, make())
    assert [s.algorithm for s in arm_specs(session, "exp")] == ["popularity", "popularity"]
    D.create_experiment(
        session,
        make(
            "ghost",
            variants=[*arms("control"), {**arms("treatment")[0], "name": "x", "strategy": "nope"}],
        ),
    )
    with pytest.raises(InvalidExperiment, match="not an algorithm"):
        arm_specs(session, "ghost")
