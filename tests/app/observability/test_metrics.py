"""Prometheus metrics: isolated registries, route templates, served lists, scrape-time state."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import cast

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.observability.metrics import UNMATCHED_ROUTE, Metrics
from app.services.profiles import Profile, ProfileCache
from app.settings import Settings
from recommenders.policy import REMOVAL_RULES, RULE_CATEGORY_CAP
from tests.conftest import ADMIN_AUTH, EVENTS_AUTH, READ_AUTH

RECS_ROUTE = "/v1/customers/{customer_id}/recommendations"


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items()]
    assert found, f"{name} {labels} not in the scrape"
    return sum(found)


def test_each_metrics_object_owns_its_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("GET", "/healthz", 200, 0.002)
    first.observe_request("GET", "/healthz", 200, 0.003)
    text = first.render().decode()
    assert value(text, "finrec_http_request_duration_seconds_count", route="/healthz") == 2
    assert "/healthz" not in second.render().decode()


def test_served_lists_and_removed_items_are_counted_by_bounded_labels() -> None:
    metrics = Metrics()
    metrics.observe_recommendation("live", "als", False, [("P1", "held"), ("P2", "suitability")])
    metrics.observe_recommendation("fallback", "popularity", True, [("P3", "suitability")])
    text = metrics.render().decode()
    assert value(text, "finrec_recommendations_total", served_from="live", degraded="false") == 1
    assert value(text, "finrec_recommendations_total", served_from="fallback", degraded="true") == 1
    assert value(text, "finrec_policy_removed_items_total", rule="suitability") == 2
    assert value(text, "finrec_policy_removed_items_total", rule="held") == 1
    assert "P1" not in text and "P3" not in text


def test_serving_state_is_read_at_scrape_time() -> None:
    metrics = Metrics()
    store = SimpleNamespace(strategies={"als": "als-20261125"})
    exposures = SimpleNamespace(pending=7, dropped=2, written=40, failed_flushes=1)
    metrics.watch(SimpleNamespace(model_store=store, exposures=exposures, profiles=[1, 2, 3]))
    text = metrics.render().decode()
    assert value(text, "finrec_active_model_info", strategy="als", version="als-20261125") == 1
    assert value(text, "finrec_exposure_buffer_depth") == 7
    assert value(text, "finrec_exposure_dropped_total") == 2
    assert value(text, "finrec_exposure_written_total") == 40
    assert value(text, "finrec_profile_cache_entries") == 3
    exposures.pending = 0
    assert value(metrics.render().decode(), "finrec_exposure_buffer_depth") == 0


def test_profile_cache_hits_and_misses_are_counted() -> None:
    clock = [0.0]
    profiles = ProfileCache(None, validity_months=24, ttl_seconds=10.0, clock=lambda: clock[0])
    metrics = Metrics()
    metrics.watch(SimpleNamespace(profiles=profiles))
    assert profiles.get("C1") is None  # miss: not cached
    profiles._entries["C1"] = (0.0, cast(Profile, object()))
    assert profiles.get("C1") is not None  # hit
    clock[0] = 11.0
    assert profiles.get("C1") is None  # miss: expired
    text = metrics.render().decode()
    assert value(text, "finrec_profile_cache_hits_total") == 1
    assert value(text, "finrec_profile_cache_misses_total") == 2


def test_requests_are_labelled_by_route_template_never_the_path(
    obs_client: TestClient, served_bank: str
) -> None:
    assert obs_client.get("/v1/customers/C2/recommendations", params={"k": 3}).status_code == 200
    assert obs_client.get("/v1/customers/NOBODY-42/recommendations").status_code == 404
    assert obs_client.get("/no/such/path/C2").status_code == 404
    response = obs_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    count = "finrec_http_request_duration_seconds_count"
    assert value(text, count, route=RECS_ROUTE, status="200") == 1
    assert value(text, count, route=RECS_ROUTE, status="404") == 1
    assert value(text, count, route=UNMATCHED_ROUTE, status="404") == 1
    assert value(text, "finrec_recommendations_total", served_from="live") == 1
    # C2 holds P01, P04 and P05, three of the most popular products: the rules kept them off.
    assert value(text, "finrec_policy_removed_items_total", rule="held") >= 1
    rules = {ls["rule"] for n, ls, _ in samples(text) if n == "finrec_policy_removed_items_total"}
    assert rules <= {*REMOVAL_RULES, RULE_CATEGORY_CAP} - {""}
    assert value(text, "finrec_active_model_info", strategy="popularity") == 1
    assert value(text, "finrec_active_model_info", version=served_bank) == 1
    assert value(text, "finrec_exposure_buffer_depth") >= 0
    for _name, labels, _value in samples(text):
        assert not any("C2" in v or "NOBODY" in v for v in labels.values()), labels


def test_every_response_carries_a_request_id(obs_client: TestClient) -> None:
    first = obs_client.get("/healthz").headers["x-request-id"]
    second = obs_client.get("/healthz").headers["x-request-id"]
    assert len(first) == 16 and first != second


def test_metrics_need_the_admin_scope(obs_client: TestClient) -> None:
    assert obs_client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert obs_client.get("/metrics", headers=READ_AUTH).status_code == 403
    assert obs_client.get("/metrics", headers=EVENTS_AUTH).status_code == 403
    assert obs_client.get("/metrics", headers=ADMIN_AUTH).status_code == 200


def test_metrics_public_opens_metrics_only(obs_settings: Settings, served_bank: str) -> None:
    settings = obs_settings.model_copy(update={"metrics_public": True})
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/customers/C2/recommendations").status_code == 401


def test_the_process_and_the_collectors_pauses_are_exported() -> None:
    import gc

    metrics = Metrics()
    before = value(metrics.render().decode(), "finrec_gc_pause_seconds_count", generation="2")
    gc.collect()
    gc.collect()
    text = metrics.render().decode()
    assert value(text, "finrec_gc_pause_seconds_count", generation="2") >= before + 2
    assert value(text, "finrec_gc_pause_seconds_sum", generation="2") > 0
    # Every pause lands in one bucket: the +Inf bucket is the count.
    count = value(text, "finrec_gc_pause_seconds_count", generation="0")
    assert value(text, "finrec_gc_pause_seconds_bucket", generation="0", le="+Inf") == count
    assert value(text, "python_gc_collections_total", generation="2") >= 2
    if sys.platform.startswith("linux"):  # the process collector reads /proc
        assert value(text, "process_resident_memory_bytes") > 0
    # One callback per process, however many apps (each with its own registry) there are.
    Metrics()
    assert sum(1 for cb in gc.callbacks if getattr(cb, "__name__", "") == "_on_gc") == 1
