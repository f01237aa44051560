"""Schemathesis against the committed ``openapi.yaml`` and the app (ASGI, in process).

Every operation is called with generated valid and invalid data, with an admin key, on a real
migrated SQLite database holding a small bank, a popularity model and a fusion of popularity
and item neighbours. Each answer must not be a 5xx, must use a documented status code and
content type, and its body and headers must match the documented schema. ``make fuzz`` runs
the same checks with many more examples against a running server (suites/fuzz.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi

from app.db import migrate
from app.db.session import make_engine, make_session_factory
from app.main import create_app
from app.settings import Settings
from recommenders.dataset import Dataset
from recommenders.fusion import FusionRecommender
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, seed_test_keys

OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"
EXAMPLES = int(os.environ.get("FINREC_FUZZ_EXAMPLES", "10"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

pytestmark = pytest.mark.xdist_group("openapi-fuzz")  # one app and database per run


# The committed document, not the one the app would generate: the file is the contract.
schema = schemathesis.openapi.from_path(OPENAPI)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Bind the schema to an app on a seeded SQLite database for this module's tests."""
    root = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{root / 'finrec.db'}"
    migrate.upgrade(url)
    seed_test_keys(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    bank.seed(factory)
    bank.publish(factory, bank.fit_popularity(), root / "popularity")
    fusion = FusionRecommender(
        members=["popularity", "itemknn"], weights={"popularity": 1.0, "itemknn": 1.0}
    )
    fusion.fit(Dataset.from_frames(*bank.frames()))
    bank.publish(factory, fusion, root / "fusion")
    engine.dispose()
    app = create_app(
        Settings(
            environment="test",
            database_url=url,
            artifact_dir=root,
            access_log=False,
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    # Calls go in process through schemathesis' ASGI client, which runs the lifespan once.
    with asgi.get_client(app) as client:
        yield client
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(fuzz_client: Any, case: Any) -> None:
    case.call_and_validate(
        base_url=f"http://{asgi.HOST}", session=fuzz_client, headers=dict(ADMIN_AUTH), checks=CHECKS
    )
