"""The policy as the database states it, to check every served item against.

Read once before traffic starts (the suites send only ``view``/``click`` events, which change no
holdings, and change no profiles): for each customer the highest product risk level they may be
shown and what they hold; for each product its status and risk level. The rules are restated
here from the design, not imported from the gate they check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from app.db.session import make_engine
from recommenders.policy import add_months

R1_ONLY = 1


def _level(value: object, prefix: str) -> int:
    if isinstance(value, str) and len(value) == 2 and value[0] == prefix and value[1] in "12345":
        return int(value[1])
    return 0


def _aware(moment: datetime | str | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class PolicyReference:
    """Customers' allowed risk level and holdings; products' status and risk level."""

    allowed_level: dict[str, int]
    held: dict[str, set[str]]
    product_status: dict[str, str]
    product_level: dict[str, int]

    @classmethod
    def load(cls, database_url: str, validity_months: int = 24) -> PolicyReference:
        now = datetime.now(UTC)
        engine = make_engine(database_url)
        try:
            with engine.connect() as conn:
                allowed: dict[str, int] = {}
                for cid, risk_class, assessed in conn.execute(
                    text("SELECT customer_id, risk_class, risk_assessed_at FROM customers")
                ):
                    level, when = _level(risk_class, "C"), _aware(assessed)
                    valid = level and when and add_months(when, validity_months) > now
                    allowed[cid] = level if valid else R1_ONLY
                held: dict[str, set[str]] = {}
                for cid, pid in conn.execute(
                    text(
                        "SELECT c.customer_id, p.product_id FROM holdings h "
                        "JOIN customers c ON c.id = h.customer_pk "
                        "JOIN products p ON p.id = h.product_pk"
                    )
                ):
                    held.setdefault(cid, set()).add(pid)
                status: dict[str, str] = {}
                levels: dict[str, int] = {}
                for pid, state, risk in conn.execute(
                    text("SELECT product_id, status, risk_level FROM products")
                ):
                    status[pid] = state
                    levels[pid] = _level(risk, "R")
        finally:
            engine.dispose()
        return cls(allowed, held, status, levels)

    def violations(self, customer_id: str, body: dict[str, Any]) -> list[str]:
        """Every way the items of one recommendation response break the policy (empty: none)."""
        found: list[str] = []
        allowed = self.allowed_level.get(customer_id)
        if allowed is None:
            return [f"{customer_id}: served although unknown to the database"]
        held = self.held.get(customer_id, set())
        if body.get("degraded"):
            # An unreadable profile fails closed: R1 only. What the customer holds cannot be
            # read either, so the fallback list cannot leave holdings out (docs/suites.md).
            allowed, held = R1_ONLY, set()
        for item in body.get("items", []):
            pid = item.get("product_id")
            if self.product_status.get(pid) != "active":
                found.append(f"{customer_id}: {pid} is {self.product_status.get(pid)!r}")
            if not 1 <= self.product_level.get(pid, 0) <= allowed:
                found.append(
                    f"{customer_id}: {pid} is R{self.product_level.get(pid)} > allowed R{allowed}"
                )
            if pid in held:
                found.append(f"{customer_id}: {pid} is already held")
        return found
