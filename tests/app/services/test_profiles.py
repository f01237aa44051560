"""Profile cache: reads once, serves from memory, forgets on invalidation, fails loudly."""

from __future__ import annotations

import socket
import threading
import time

import anyio
import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer
from app.db.session import make_engine, make_session_factory
from app.services.errors import CustomerNotFound
from app.services.profiles import Profile, ProfileCache, ProfileUnavailable, read_profile
from app.services.recommend.flow import profile_for
from tests.app.services.recommend import bank


@pytest.fixture
def cache(session_factory: sessionmaker[Session]) -> ProfileCache:
    bank.seed(session_factory)
    return ProfileCache(session_factory, validity_months=24, max_size=3, ttl_seconds=60)


def test_load_reads_profile_and_holdings(cache: ProfileCache) -> None:
    assert cache.get("C2") is None
    profile = cache.load("C2")
    assert profile.risk_class == 3
    assert profile.held == {"P01", "P04", "P05"}
    assert profile.segment == "mass"
    assert profile.effective_risk_class(bank.NOW) == 3
    assert cache.get("C2") is profile


def test_customer_without_holdings_and_both_read_paths(
    cache: ProfileCache, session_factory: sessionmaker[Session]
) -> None:
    """One outer-joined query: a customer who holds nothing still has a profile, and a session
    or a bare connection read the same profile."""
    profile = cache.load("C7")
    assert profile.held == frozenset() and profile.segment == "mass" and profile.risk_class == 2
    engine = session_factory.kw["bind"]
    for cid in ("C2", "C3", "C7"):
        with session_factory() as session:
            via_session = read_profile(session, cid, 24)
        with engine.connect() as connection:
            via_connection = read_profile(connection, cid, 24)
        assert via_session == via_connection == cache.load(cid)
    assert cache.load("C3").held == {"P05", "P06", "P07", "P11"}


def test_expired_assessment_counts_as_unassessed(cache: ProfileCache) -> None:
    assert cache.load("C4").effective_risk_class(bank.NOW) == 0
    assert cache.load("C5").effective_risk_class(bank.NOW) == 0


def test_invalidate_makes_the_next_read_fresh(
    cache: ProfileCache, session_factory: sessionmaker[Session]
) -> None:
    assert cache.load("C1").consent is True
    with session_factory() as session, session.begin():
        session.execute(
            update(Customer)
            .where(Customer.customer_id == "C1")
            .values(consent_personalization=False)
        )
    assert cache.get("C1") is not None  # still cached until someone says otherwise
    cache.invalidate("C1")
    assert cache.get("C1") is None
    assert cache.load("C1").consent is False
    cache.invalidate(["C1", "C2"])  # several at once, as event ingestion does
    assert cache.get("C1") is None


def test_a_read_racing_an_invalidation_is_not_cached(cache: ProfileCache) -> None:
    profile = cache.load("C3")
    cache.invalidate("C3")
    cache.put(profile, epoch=0)  # an epoch from before the invalidation
    assert cache.get("C3") is None


def test_lru_and_ttl(session_factory: sessionmaker[Session]) -> None:
    bank.seed(session_factory)
    now = [0.0]
    cache = ProfileCache(
        session_factory, validity_months=24, max_size=2, ttl_seconds=10, clock=lambda: now[0]
    )
    for cid in ("C1", "C2", "C3"):
        cache.load(cid)
    assert cache.get("C1") is None and len(cache) == 2
    now[0] = 11.0
    assert cache.get("C2") is None
    assert cache.get_stale("C2") is not None


def test_unknown_customer_and_unreachable_store(cache: ProfileCache) -> None:
    with pytest.raises(CustomerNotFound):
        cache.load("nobody")
    broken = ProfileCache(
        sessionmaker(bind=create_engine("sqlite:////nonexistent-dir/finrec.db")),
        validity_months=24,
    )
    with pytest.raises(ProfileUnavailable):
        broken.load("C1")


def test_an_unchanged_reread_keeps_the_cached_object(
    session_factory: sessionmaker[Session],
) -> None:
    """After the TTL a re-read equal to the cached profile renews it (same object, so the
    per-profile caches of the service stay valid); a changed one replaces it."""
    bank.seed(session_factory)
    now = [0.0]
    cache = ProfileCache(
        session_factory, validity_months=24, max_size=10, ttl_seconds=10, clock=lambda: now[0]
    )
    first = cache.load("C2")
    now[0] = 11.0
    assert cache.get("C2") is None  # expired
    again = cache.load("C2")
    assert again is first and cache.get("C2") is first  # renewed at 11.0
    now[0] = 20.0
    assert cache.get("C2") is first  # fresh until 21.0
    with session_factory() as session, session.begin():
        session.execute(
            update(Customer).where(Customer.customer_id == "C2").values(segment="affluent")
        )
    now[0] = 22.0
    changed = cache.load("C2")
    assert changed is not first and changed.segment == "affluent" and first.segment == "mass"
    assert cache.get("C2") is changed
    cache.invalidate("C2")
    assert cache.load("C2") is not changed  # an invalidation always starts afresh


def test_a_database_that_never_answers_fails_the_read_in_time() -> None:
    """A server that accepts the connection but never speaks (a dropped route behaves alike)
    makes the read fail after the engine's network timeout, not after minutes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever answers
        port = silent.getsockname()[1]
        engine = make_engine(
            f"postgresql+psycopg://finrec@127.0.0.1:{port}/finrec", network_timeout=2
        )
        cache = ProfileCache(make_session_factory(engine), validity_months=24)
        started = time.monotonic()
        with pytest.raises(ProfileUnavailable):
            cache.load("C1")
        assert time.monotonic() - started < 10
        engine.dispose()


def test_requests_stop_waiting_for_a_stuck_read() -> None:
    """With every read slot held by a read that does not return, a request for another
    customer is answered degraded after ``wait`` instead of queueing behind it."""
    release = threading.Event()

    class Stuck(ProfileCache):
        def load(self, customer_id: str) -> Profile:
            release.wait(10)
            raise ProfileUnavailable("stuck")

    cache = Stuck(None, validity_months=24)

    async def main() -> tuple[tuple[Profile | None, bool], float]:
        reads = anyio.CapacityLimiter(1)
        async with anyio.create_task_group() as group:
            group.start_soon(profile_for, cache, "C1", reads, None)  # holds the only slot
            await anyio.sleep(0.05)
            started = time.monotonic()
            result = await profile_for(cache, "C2", reads, 0.2)
            waited = time.monotonic() - started
            release.set()
        return result, waited

    (profile, degraded), waited = anyio.run(main)
    assert profile is None and degraded is True
    assert 0.15 < waited < 5
