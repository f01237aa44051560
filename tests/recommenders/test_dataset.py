"""ID maps, the weighted matrix, decay, features and risk classes built from contract frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommenders.dataset import Dataset, DatasetConfig, IdMap
from recommenders.errors import DatasetError
from tests.recommenders.conftest import tiny_frames

T0 = pd.Timestamp("2024-06-01", tz="UTC")


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "risk_class": ["C3", None, "C5"],
            "risk_assessed_at": [T0 - pd.Timedelta(days=30), T0, T0 - pd.Timedelta(days=3 * 365)],
            "segment": ["mass", "affluent", None],
            "age": [23, 41, 70],
            "income_band": ["low", "high", "mid"],
            "consent_personalization": [True, False, None],
            "tenure_years": [1.0, 5.0, 12.0],
        }
    )
    products = pd.DataFrame(
        {
            "product_id": ["p1", "p2"],
            "name": ["Saver", "Growth fund"],
            "category": ["deposit", "fund"],
            "risk_level": ["R1", "R4"],
            "status": ["active", "retired"],
            "tags": ["safe|savings", ""],
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "ghost", "c3"],
            "product_id": ["p1", "p1", "p2", "p2", "p1", "p1"],
            "event_type": ["view", "purchase", "click", "hold", "view", "teleport"],
            "occurred_at": [T0 - pd.Timedelta(days=10), T0, T0, T0 - pd.Timedelta(days=20), T0, T0],
        }
    )
    return customers, products, interactions


def test_id_map_round_trip_and_unknowns() -> None:
    ids = IdMap(["b", "a", "c"])
    assert len(ids) == 3
    assert ids.to_index(["c", "a", "zz"]).tolist() == [2, 1, -1]
    assert ids.to_external(np.array([0, 2])).tolist() == ["b", "c"]
    assert ids.to_index([]).dtype == np.int32
    with pytest.raises(ValueError):
        ids.external[0] = "x"
    with pytest.raises(DatasetError, match="duplicate IDs: a"):
        IdMap(["a", "b", "a"])


def test_id_map_looks_up_pandas_columns_of_any_string_storage() -> None:
    ids = IdMap(["10", "a", "c"])
    expected = [2, 1, -1, 0, 2]
    values = ["c", "a", "zz", "10", "c"]
    for column in (
        pd.Series(values, dtype=object),
        pd.Series(values, dtype="string"),
        pd.Series(values, dtype="category"),
    ):
        assert ids.to_index(column).tolist() == expected
    assert ids.to_index(pd.Series([10, 11])).tolist() == [0, -1]  # numeric IDs match as text
    assert ids.to_index(pd.Series(["a", None, "c"])).tolist() == [1, -1, 2]  # missing = unknown


def test_event_times_stay_typed(tiny_dataset: Dataset) -> None:
    column = tiny_dataset.events["occurred_at"]
    assert isinstance(column.dtype, pd.DatetimeTZDtype)
    assert str(column.dt.tz) == "UTC"


def test_weighted_matrix_sums_event_weights_and_drops_unknowns() -> None:
    dataset = Dataset.from_frames(*frames())
    dense = dataset.interactions.toarray()
    assert dataset.interactions.dtype == np.float32
    assert dense.tolist() == [[9.0, 2.0], [0.0, 8.0], [0.0, 0.0]]
    assert dataset.dropped_interactions == 2  # unknown customer, unknown event type
    assert dataset.holdings.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert dataset.window == ((T0 - pd.Timedelta(days=20)).to_pydatetime(), T0.to_pydatetime())


def test_time_decay_halves_weight_every_half_life() -> None:
    config = DatasetConfig(half_life_days=10.0)
    dataset = Dataset.from_frames(*frames(), config=config)
    dense = dataset.interactions.toarray()
    assert dense[0, 0] == pytest.approx(1.0 * 0.5 + 8.0)
    assert dense[1, 1] == pytest.approx(8.0 * 0.25)


def test_declared_attributes_and_expired_risk_assessment() -> None:
    dataset = Dataset.from_frames(*frames())
    # c3's assessment is three years old (validity 24 months): treated as missing.
    assert dataset.customer_risk_class.tolist() == [3, 0, 0]
    assert dataset.customer_consent.tolist() == [True, False, True]
    assert dataset.segment_vocabulary == ("affluent", "mass")
    assert dataset.customer_segment.tolist() == [1, 0, -1]
    assert dataset.product_risk_level.tolist() == [1, 4]
    assert dataset.product_status.tolist() == ["active", "retired"]
    assert dataset.category_vocabulary == ("deposit", "fund")


def test_feature_rows_name_their_columns() -> None:
    dataset = Dataset.from_frames(*frames())
    names = dataset.customer_feature_names
    row = dataset.customer_features[0].indices
    encoded = {names[i] for i in row}
    assert {"segment=mass", "risk_class=C3", "age<25", "income_band=low"} <= encoded
    # Free-form numeric columns are binned at quantiles; one bin per customer.
    assert len([n for n in encoded if n.startswith("tenure_years")]) == 1
    product_names = dataset.product_feature_names
    assert {product_names[i] for i in dataset.product_features[0].indices} == {
        "category=deposit",
        "risk_level=R1",
        "tag=safe",
        "tag=savings",
    }


def test_encoder_encodes_new_customers_into_the_same_columns() -> None:
    dataset = Dataset.from_frames(*frames())
    newcomer = pd.DataFrame(
        {
            "customer_id": ["new"],
            "segment": ["affluent"],
            "age": [37],
            "income_band": ["unheard-of"],
            "risk_class": ["C3"],
        }
    )
    row = dataset.customer_encoder.encode(newcomer)
    names = dataset.customer_feature_names
    assert row.shape == (1, len(names))
    assert {names[i] for i in row.indices} == {"segment=affluent", "age=35-45", "risk_class=C3"}


def test_with_events_keeps_ids_and_reweights() -> None:
    dataset = Dataset.from_frames(*frames())
    early = dataset.events[dataset.events["occurred_at"] < T0]
    train = dataset.with_events(early)
    assert train.customer_ids == dataset.customer_ids
    assert train.interactions.toarray().tolist() == [[1.0, 0.0], [0.0, 8.0], [0.0, 0.0]]
    assert train.fingerprint != dataset.fingerprint


def test_fingerprint_is_stable_and_follows_the_data() -> None:
    a = Dataset.from_frames(*tiny_frames())
    b = Dataset.from_frames(*tiny_frames())
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    customers, products, interactions = tiny_frames()
    c = Dataset.from_frames(customers, products, interactions.iloc[1:])
    assert c.fingerprint != a.fingerprint


def test_unix_seconds_are_accepted() -> None:
    customers, products, interactions = frames()
    interactions["occurred_at"] = [int(t.timestamp()) for t in interactions["occurred_at"]]
    dataset = Dataset.from_frames(customers, products, interactions)
    assert dataset.interactions.toarray()[0, 0] == 9.0


def test_history_matrix_for_customers_seen_only_at_serving_time() -> None:
    dataset = Dataset.from_frames(*frames())
    events = pd.DataFrame(
        {
            "customer_id": ["z", "y", "z"],
            "product_id": ["p2", "p1", "nope"],
            "event_type": ["click", "purchase", "view"],
        }
    )
    history = dataset.history_matrix(events)
    assert history.toarray().tolist() == [[8.0, 0.0], [0.0, 2.0]]  # rows: y, z


def test_contract_violations_are_reported() -> None:
    customers, products, interactions = frames()
    with pytest.raises(DatasetError, match="missing required column"):
        Dataset.from_frames(customers, products.drop(columns=["risk_level"]), interactions)
    products["status"] = ["active", "sleeping"]
    with pytest.raises(DatasetError, match="unknown product status"):
        Dataset.from_frames(customers, products, interactions)


def test_config_is_strict_and_round_trips() -> None:
    config = DatasetConfig(half_life_days=30, event_weights={"hold": 1.0})
    assert DatasetConfig.model_validate_json(config.model_dump_json()) == config
    with pytest.raises(ValueError):
        DatasetConfig.model_validate({"half_life": 3})
