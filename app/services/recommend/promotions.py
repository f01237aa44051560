"""Admin-configured campaigns (rows of ``campaigns``): boosts and pins, always labelled.

A boost lifts a product's ranking score by ``boost`` times the spread of the candidate scores
(scale-free, so it means the same for every model); a pin places the product at ``pin_rank``.
Both act only on products the policy gate already allows, and every item a campaign touched
carries the ``promotion`` reason.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Campaign

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Promotion:
    product_id: str
    placement: str | None
    boost: float
    pin_rank: int | None
    starts_at: datetime | None
    ends_at: datetime | None

    def applies(self, placement: str | None, now: datetime) -> bool:
        if self.placement is not None and self.placement != placement:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


class PromotionBook:
    """The enabled campaigns, held in memory and refreshed in the background."""

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        promotions: tuple[Promotion, ...] = (),
    ) -> None:
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self.current: tuple[Promotion, ...] = promotions

    def active(self, placement: str | None, now: datetime) -> list[Promotion]:
        current = self.current
        if not current:
            return []
        return [p for p in current if p.applies(placement, now)]

    def refresh(self) -> bool:
        if self._session_factory is None:
            return False
        try:
            with self._session_factory() as session:
                # Campaigns are ended, never deleted: leave the finished ones in the database so
                # the list each request scans stays as short as what can still apply.
                now = datetime.now(UTC)
                query = select(Campaign).where(
                    Campaign.enabled.is_(True),
                    or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
                )
                rows = session.scalars(query).all()
                promotions = tuple(
                    Promotion(
                        product_id=r.product_id,
                        placement=r.placement,
                        boost=float(r.boost or 0.0),
                        pin_rank=r.pin_rank,
                        starts_at=r.starts_at,
                        ends_at=r.ends_at,
                    )
                    for r in rows
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("campaign refresh failed; keeping the previous set: %s", exc)
            return False
        with self._lock:
            self.current = promotions
        return True
