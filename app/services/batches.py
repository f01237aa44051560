"""The API's read side of precompute: a customer's list from the current complete batch.

Only batches marked complete and current are ever read, so a run in progress (or one that
crashed) is invisible to the API, which keeps serving the previous complete batch. The current
batch per strategy is re-read at most every ``refresh_seconds``; lists are kept in a bounded
LRU keyed by batch, so a published batch takes over without any cache flush. A database error
never fails a request: the lookup answers ``None`` and the service scores live instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Batch, PrecomputedRecommendation
from app.services.recommend.candidates import PrecomputedList
from app.services.recommend.reasons import NON_PERSONALISED

log = logging.getLogger(__name__)

_MISSING = object()


class BatchReader:
    """Implements the recommendation service's ``PrecomputedSource`` over the batch tables."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        refresh_seconds: float = 30.0,
        cache_size: int = 100_000,
    ) -> None:
        self._session_factory = session_factory
        self._refresh_seconds = refresh_seconds
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._current: dict[str, tuple[str, str]] = {}  # strategy -> (batch_id, model_version)
        self._read_at = float("-inf")
        self._lists: OrderedDict[tuple[str, str], PrecomputedList | None] = OrderedDict()

    def current(self) -> dict[str, tuple[str, str]]:
        """``{strategy: (batch_id, model_version)}`` of the complete batches served now."""
        if time.monotonic() - self._read_at >= self._refresh_seconds:
            self.refresh()
        return self._current

    def refresh(self) -> bool:
        try:
            with self._session_factory() as session:
                rows = session.execute(
                    select(Batch.strategy, Batch.batch_id, Batch.model_version).where(
                        Batch.is_current.is_(True), Batch.status == "complete"
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("current batches could not be read; keeping the last known: %s", exc)
            self._read_at = time.monotonic()  # do not retry on every request while it is down
            return False
        self._current = {s: (b, v) for s, b, v in rows}
        self._read_at = time.monotonic()
        return True

    def lookup(self, customer_id: str, strategy: str) -> PrecomputedList | None:
        """The customer's personalised list in the current batch of ``strategy``, if any."""
        found = self.current().get(strategy)
        if found is None:
            return None
        batch_id, version = found
        key = (batch_id, customer_id)
        with self._lock:
            cached = self._lists.get(key, _MISSING)
            if cached is not _MISSING:
                self._lists.move_to_end(key)
                return cached  # type: ignore[return-value]
        try:
            entry = self._read(batch_id, version, strategy, customer_id)
        except SQLAlchemyError as exc:
            log.warning("precomputed list could not be read: %s", exc)
            return None
        with self._lock:
            self._lists[key] = entry
            while len(self._lists) > self._cache_size:
                self._lists.popitem(last=False)
        return entry

    def _read(
        self, batch_id: str, version: str, strategy: str, customer_id: str
    ) -> PrecomputedList | None:
        table = PrecomputedRecommendation
        with self._session_factory() as session:
            rows = session.execute(
                select(table.product_id, table.score, table.reason_codes)
                .where(table.batch_id == batch_id, table.customer_id == customer_id)
                .order_by(table.rank)
            ).all()
        codes = tuple(tuple(c for c in r.reason_codes.split("|") if c) for r in rows)
        # A list built without consent is a campaign list, not a personalised one: if consent
        # came back since, the customer is scored live rather than served the generic list.
        if not rows or any(NON_PERSONALISED in c for c in codes):
            return None
        return PrecomputedList(
            strategy=strategy,
            model_version=version,
            product_ids=tuple(r.product_id for r in rows),
            scores=tuple(float(r.score) for r in rows),
            reason_codes=codes,
        )
