"""Holds the current catalogue snapshot and replaces it on refresh or on a product change."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Product
from app.services.recommend.catalog import CatalogSnapshot, load_catalog

log = logging.getLogger(__name__)


class CatalogHolder:
    """The current :class:`CatalogSnapshot` (``None`` until the first successful load).

    Reads are a plain attribute read; writers build a new snapshot and swap it in, so a request
    always sees one consistent catalogue.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        snapshot: CatalogSnapshot | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self.current: CatalogSnapshot | None = snapshot

    def refresh(self) -> bool:
        """Reload products and popularity; on a database error keep the old snapshot.

        A reload that finds nothing changed keeps the current snapshot, version and all: what
        the service keeps per snapshot (each cached customer's gate, the layouts of the
        models' factors) stays valid instead of being rebuilt after every periodic refresh.
        """
        if self._session_factory is None:
            return False
        try:
            with self._session_factory() as session:
                snapshot = load_catalog(session)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("catalogue refresh failed; keeping the previous one: %s", exc)
            return False
        with self._lock:
            current = self.current
            if current is None or not snapshot.same_content(current):
                self.current = snapshot
        return True

    def invalidate(self, product_id: str) -> None:
        """Apply one product's change now (status, risk level) without recounting popularity.

        Called by product writers after their commit, so a suspended product disappears from
        the very next response. Falls back to a full refresh if the snapshot is missing.
        """
        current = self.current
        if current is None or self._session_factory is None:
            self.refresh()
            return
        try:
            with self._session_factory() as session:
                row = session.execute(
                    select(
                        Product.product_id,
                        Product.name,
                        Product.category,
                        Product.risk_level,
                        Product.status,
                    ).where(Product.product_id == product_id)
                ).first()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("product %s could not be re-read: %s", product_id, exc)
            return
        rows = {
            pid: (
                pid,
                current.names[i],
                current.categories[i],
                f"R{current.risk_level[i]}",
                "active" if current.active[i] else "inactive",
            )
            for pid, i in current.index.items()
        }
        if row is None:
            rows.pop(product_id, None)
        else:
            rows[product_id] = (row[0], row[1], row[2], row[3], row[4])
        popularity = {pid: float(current.popularity[i]) for pid, i in current.index.items()}
        segments = {
            seg: {pid: float(values[i]) for pid, i in current.index.items() if values[i] > 0}
            for seg, values in current.segment_popularity.items()
        }
        snapshot = CatalogSnapshot.build(list(rows.values()), popularity, segments)
        with self._lock:
            self.current = snapshot
