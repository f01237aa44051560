"""What a batch is computed from: the customers in a stable order, their gate inputs and holdings.

Customers are read one chunk at a time, in customer-ID order, by keyset pagination (``WHERE
customer_id > last ORDER BY customer_id LIMIT chunk``), so a run holds one chunk of them at a
time whatever the size of the bank. A first pass reads every chunk once to count the customers,
fingerprint the data and note where each chunk starts; scoring then reads each chunk it owns
again from its first customer ID. The fingerprint is part of the batch identity, so a rerun after
a crash resumes the same batch only when it would compute the same rows; each chunk's digest is
checked again when the chunk is scored, so data changed in between stops the run instead of
mixing two states of the bank in one batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
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
class Block:
    """One chunk of customers in customer-ID order; row ``i`` of each array is customer ``i``."""

    customer_ids: np.ndarray  # object, external IDs
    segments: np.ndarray  # object, ``None`` for no segment
    risk_class: np.ndarray  # int8, declared class 1..5, 0 = none
    valid_until: list[datetime | None]  # the assessment expires at this moment
    effective_risk: np.ndarray  # int8, the class the gate uses at ``as_of``
    consent: np.ndarray  # bool
    holdings: sp.csr_matrix  # customers x catalogue positions, stored entry = held
    catalog: CatalogSnapshot

    @property
    def size(self) -> int:
        return int(self.customer_ids.shape[0])

    def profile(self, row: int) -> Profile:
        """The serving profile of customer ``row`` (declared attributes are not loaded)."""
        start, end = self.holdings.indptr[row], self.holdings.indptr[row + 1]
        held = frozenset(self.catalog.product_ids[self.holdings.indices[start:end]].tolist())
        return Profile(
            customer_id=str(self.customer_ids[row]),
            segment=self.segments[row],
            risk_class=int(self.risk_class[row]),
            risk_valid_until=self.valid_until[row],
            consent=bool(self.consent[row]),
            held=held,
        )

    def digest(self) -> bytes:
        """sha256 over every per-customer input of the gate and the ranking in this chunk."""
        digest = hashlib.sha256()
        for text in (
            "\x1f".join(self.customer_ids.tolist()),
            "\x1f".join(s or "" for s in self.segments.tolist()),
            "\x1f".join(v.isoformat() if v else "" for v in self.valid_until),
        ):
            digest.update(text.encode())
            digest.update(b"\x1e")
        for array in (
            self.risk_class,
            self.effective_risk,
            self.consent,
            self.holdings.indptr.astype(np.int64),
            self.holdings.indices.astype(np.int64),
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(b"\x1e")
        return digest.digest()


@dataclass(frozen=True)
class Plan:
    """The first pass's result: O(chunks) data, never O(customers)."""

    size: int  # customers
    chunk_size: int
    first_ids: list[str]  # chunk ``c`` starts at customer ``first_ids[c]``
    digests: list[bytes]  # chunk ``c``'s :meth:`Block.digest`
    fingerprint: str

    @property
    def chunks(self) -> int:
        return len(self.first_ids)

    def bounds(self, chunk: int) -> tuple[int, int]:
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.size)


class DataChanged(Exception):
    """A chunk read for scoring differs from the same chunk read for the fingerprint."""


class PopulationReader:
    """Reads customer chunks with the gate inputs the scoring needs, at ``as_of``."""

    def __init__(
        self,
        session: Session,
        catalog: CatalogSnapshot,
        as_of: datetime,
        validity_months: int,
        chunk_size: int,
    ) -> None:
        self.catalog = catalog
        self.as_of = as_of
        self.validity_months = validity_months
        self.chunk_size = chunk_size
        self.position = {
            pk: catalog.index.get(pid, -1)
            for pk, pid in session.execute(select(Product.id, Product.product_id))
        }

    def read(self, session: Session, after: str | None, *, inclusive: bool = False) -> Block:
        """The next chunk of customers after (or from, with ``inclusive``) ID ``after``."""
        query = select(
            Customer.id,
            Customer.customer_id,
            Customer.segment,
            Customer.risk_class,
            Customer.risk_assessed_at,
            Customer.consent_personalization,
        )
        if after is not None:
            key = Customer.customer_id >= after if inclusive else Customer.customer_id > after
            query = query.where(key)
        # Core execution on the session's connection: the ORM's result machinery costs more
        # than the query for plain column tuples.
        conn = session.connection()
        rows = conn.execute(query.order_by(Customer.customer_id).limit(self.chunk_size)).all()
        n = len(rows)
        pks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        ids = np.empty(n, dtype=object)
        ids[:] = [r[1] for r in rows]
        segments = np.empty(n, dtype=object)
        segments[:] = [r[2] for r in rows]
        declared = np.fromiter((parse_level(r[3], "C") for r in rows), dtype=np.int8, count=n)
        valid_until = [add_months(r[4], self.validity_months) if r[4] else None for r in rows]
        effective = np.fromiter(
            (
                c if c != UNASSESSED and v is not None and self.as_of < v else UNASSESSED
                for c, v in zip(declared.tolist(), valid_until, strict=True)
            ),
            dtype=np.int8,
            count=n,
        )
        consent = np.fromiter((r[5] is True for r in rows), dtype=bool, count=n)
        holdings = self._holdings(session, pks, ids)
        return Block(
            ids, segments, declared, valid_until, effective, consent, holdings, self.catalog
        )

    def _holdings(self, session: Session, pks: np.ndarray, ids: np.ndarray) -> sp.csr_matrix:
        """The chunk's holdings, selected by the chunk's customer-ID range (an index range)."""
        n = pks.shape[0]
        pairs = np.empty((0, 2), dtype=np.int64)
        if n:
            order = np.argsort(pks)
            sorted_pks = pks[order]
            found = (
                session.connection()
                .execute(
                    select(Holding.customer_pk, Holding.product_pk)
                    .join(Customer, Customer.id == Holding.customer_pk)
                    .where(Customer.customer_id >= ids[0], Customer.customer_id <= ids[-1])
                )
                .all()
            )
            customer = np.fromiter((c for c, _ in found), dtype=np.int64, count=len(found))
            product = np.fromiter(
                (self.position.get(p, -1) for _, p in found), dtype=np.int64, count=len(found)
            )
            at = np.minimum(np.searchsorted(sorted_pks, customer), n - 1)
            keep = (sorted_pks[at] == customer) & (product >= 0)
            pairs = np.stack([order[at[keep]], product[keep]], axis=1)
        holdings = sp.csr_matrix(
            (np.ones(pairs.shape[0], dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
            shape=(n, self.catalog.size),
        )
        holdings.sum_duplicates()
        holdings.sort_indices()
        return holdings

    def blocks(self, session: Session) -> Iterator[Block]:
        """Every chunk in order (keyset pagination: each query starts after the last ID)."""
        after: str | None = None
        while True:
            block = self.read(session, after)
            if block.size == 0:
                return
            yield block
            if block.size < self.chunk_size:
                return
            after = str(block.customer_ids[-1])

    def plan(self, session: Session) -> Plan:
        """Count, fingerprint and locate every chunk, holding one chunk at a time."""
        first_ids: list[str] = []
        digests: list[bytes] = []
        size = 0
        total = hashlib.sha256(_catalog_digest(self.catalog))
        for block in self.blocks(session):
            first_ids.append(str(block.customer_ids[0]))
            digests.append(block.digest())
            total.update(digests[-1])
            size += block.size
        return Plan(size, self.chunk_size, first_ids, digests, total.hexdigest())

    def chunk(self, session: Session, plan: Plan, chunk: int) -> Block:
        """Chunk ``chunk`` of the plan, refused when its data is not what was fingerprinted."""
        block = self.read(session, plan.first_ids[chunk], inclusive=True)
        start, stop = plan.bounds(chunk)
        if block.size != stop - start or block.digest() != plan.digests[chunk]:
            raise DataChanged(f"customer data changed during the run (chunk {chunk})")
        return block


def _catalog_digest(catalog: CatalogSnapshot) -> bytes:
    """sha256 over the catalogue inputs of the gate and the ranking (popularity too)."""
    digest = hashlib.sha256()
    for text in ("\x1f".join(catalog.product_ids.tolist()), "\x1f".join(catalog.categories)):
        digest.update(text.encode())
        digest.update(b"\x1e")
    for array in (catalog.risk_level, catalog.active, catalog.popularity):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"\x1e")
    for segment in sorted(catalog.segment_popularity):
        digest.update(segment.encode())
        digest.update(catalog.segment_popularity[segment].tobytes())
    return digest.digest()
