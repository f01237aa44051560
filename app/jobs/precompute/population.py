"""What a batch is computed from: the customers in a stable order, their gate inputs and holdings.

Everything is read once at the start of a run into arrays (a few tens of bytes per customer),
and fingerprinted: the fingerprint is part of the batch identity, so a rerun after a crash
resumes the same batch only when it would compute the same rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Customer, Holding, Product
from app.services.profiles import Profile
from app.services.recommend.catalog import CatalogSnapshot
from recommenders.policy import UNASSESSED, add_months, parse_level


@dataclass(frozen=True)
class Population:
    """Every customer, sorted by external ID; row ``i`` of each array is customer ``i``."""

    customer_ids: list[str]
    segments: list[str | None]
    risk_class: np.ndarray  # int8, declared class 1..5, 0 = none
    valid_until: list[datetime | None]  # the assessment expires at this moment
    effective_risk: np.ndarray  # int8, the class the gate uses at ``as_of``
    consent: np.ndarray  # bool
    holdings: sp.csr_matrix  # customers x catalogue positions, stored entry = held
    catalog: CatalogSnapshot

    @property
    def size(self) -> int:
        return len(self.customer_ids)

    def profile(self, row: int) -> Profile:
        """The serving profile of customer ``row`` (declared attributes are not loaded)."""
        start, end = self.holdings.indptr[row], self.holdings.indptr[row + 1]
        held = frozenset(self.catalog.product_ids[self.holdings.indices[start:end]].tolist())
        return Profile(
            customer_id=self.customer_ids[row],
            segment=self.segments[row],
            risk_class=int(self.risk_class[row]),
            risk_valid_until=self.valid_until[row],
            consent=bool(self.consent[row]),
            held=held,
        )

    def fingerprint(self) -> str:
        """sha256 over every input of the gate and the ranking (catalogue and popularity too)."""
        digest = hashlib.sha256()
        cat = self.catalog
        for text in (
            "\x1f".join(self.customer_ids),
            "\x1f".join(s or "" for s in self.segments),
            "\x1f".join(v.isoformat() if v else "" for v in self.valid_until),
            "\x1f".join(cat.product_ids.tolist()),
            "\x1f".join(cat.categories),
        ):
            digest.update(text.encode())
            digest.update(b"\x1e")
        for array in (
            self.risk_class,
            self.effective_risk,
            self.consent,
            self.holdings.indptr.astype(np.int64),
            self.holdings.indices.astype(np.int64),
            cat.risk_level,
            cat.active,
            cat.popularity,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(b"\x1e")
        for segment in sorted(cat.segment_popularity):
            digest.update(segment.encode())
            digest.update(cat.segment_popularity[segment].tobytes())
        return digest.hexdigest()


def load_population(
    session: Session, catalog: CatalogSnapshot, as_of: datetime, validity_months: int
) -> Population:
    """Read customers and holdings into arrays (two streamed queries)."""
    rows = session.execute(
        select(
            Customer.id,
            Customer.customer_id,
            Customer.segment,
            Customer.risk_class,
            Customer.risk_assessed_at,
            Customer.consent_personalization,
        ).order_by(Customer.customer_id)
    ).all()
    pk_row = {pk: i for i, (pk, *_rest) in enumerate(rows)}
    ids = [r[1] for r in rows]
    segments = [r[2] for r in rows]
    declared = np.fromiter((parse_level(r[3], "C") for r in rows), dtype=np.int8, count=len(rows))
    valid_until = [add_months(r[4], validity_months) if r[4] else None for r in rows]
    effective = np.fromiter(
        (
            c if c != UNASSESSED and v is not None and as_of < v else UNASSESSED
            for c, v in zip(declared.tolist(), valid_until, strict=True)
        ),
        dtype=np.int8,
        count=len(rows),
    )
    consent = np.fromiter((r[5] is True for r in rows), dtype=bool, count=len(rows))

    position = {
        pk: catalog.index.get(pid, -1)
        for pk, pid in session.execute(select(Product.id, Product.product_id))
    }
    pairs = np.asarray(
        [
            (pk_row[c], position.get(p, -1))
            for c, p in session.execute(select(Holding.customer_pk, Holding.product_pk))
            if c in pk_row
        ],
        dtype=np.int64,
    ).reshape(-1, 2)
    pairs = pairs[pairs[:, 1] >= 0]
    holdings = sp.csr_matrix(
        (np.ones(pairs.shape[0], dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(len(rows), catalog.size),
    )
    holdings.sum_duplicates()
    holdings.sort_indices()
    return Population(ids, segments, declared, valid_until, effective, consent, holdings, catalog)
