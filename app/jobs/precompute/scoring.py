"""Score a block of customers: model scores, the policy gate in block form, top candidates by
``argpartition``, then caps, backfill and reasons for the whole block (compiled, in
:mod:`app.jobs.precompute.kernel`).

The list a customer gets here is the list the live API would build: the candidates come from the
same scores and the same gate, and the assembly follows
:meth:`~app.services.recommend.service.RecommendationService._assemble` rule for rule (a batch
has no promotions); the parity tests compare every customer of a test bank with the live
service. Customers the block path does not cover (cold start, the fusion strategy) are scored
one by one by the live service itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from app.jobs.precompute.block import (
    FROM_CANDIDATES,
    BlockLists,
    Pools,
    assemble_block,
    build_pools,
)
from app.jobs.precompute.kernel import block_lists
from app.jobs.precompute.population import Block
from app.jobs.precompute.rows import BatchRows, Row, round_scores
from app.services.model_store import LoadedModel
from app.services.recommend import reasons as R
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.service import Gate, RecommendationService, RecommendRequest
from recommenders.base import VectorModel
from recommenders.policy import penalty_by_risk_class

NEG_INF = np.float32(-np.inf)

# Outcomes counted in the run summary (one per customer).
PERSONALISED = "personalised"
NON_PERSONALISED = "non_personalised"
COLD_START = "cold_start"
FALLBACK = "fallback"
NO_ELIGIBLE_PRODUCT = "no_eligible_product"

__all__ = ["BatchRows", "Row"]


def candidate_limit(k: int) -> int:
    """How many candidates the service ranks before caps for a list of ``k`` (as it does live)."""
    return k * 3 + 5


@dataclass(frozen=True)
class FactorLayout:
    """A factor model's product side laid out in catalogue order (as the live fast path does)."""

    factors: np.ndarray  # float32 (catalogue size x f)
    bias: np.ndarray | None
    unknown: np.ndarray  # bool: catalogue products the model never saw


def factor_layout(loaded: LoadedModel, catalog: CatalogSnapshot) -> FactorLayout | None:
    model = loaded.model
    if not isinstance(model, VectorModel):
        return None
    _, model_idx, catalog_idx = loaded.catalog_view(catalog.version, catalog.index)
    source = model.product_factors
    factors = np.zeros((catalog.size, source.shape[1]), dtype=np.float32)
    factors[catalog_idx] = source[model_idx]
    bias = None
    if model.product_bias is not None:
        bias = np.zeros(catalog.size, dtype=np.float32)
        bias[catalog_idx] = model.product_bias[model_idx]
    unknown = np.ones(catalog.size, dtype=bool)
    unknown[catalog_idx] = False
    return FactorLayout(factors, bias, unknown)


def score_block(
    loaded: LoadedModel,
    catalog: CatalogSnapshot,
    layout: FactorLayout | None,
    positions: np.ndarray,
) -> np.ndarray:
    """Scores (customers x catalogue positions) for customers the model knows."""
    model = loaded.model
    if layout is not None:
        rows = _gather_rows(loaded, model.customer_factors, positions)
        row_bias = None
        if model.customer_bias is not None:
            row_bias = _gather_rows(loaded, model.customer_bias, positions)
        scores = rows @ layout.factors.T
        if layout.bias is not None:
            scores += layout.bias
        if row_bias is not None:
            scores += row_bias[:, None]
        # Products the model never saw are sunk by the block penalty (BlockInputs.of).
        return np.asarray(scores, dtype=np.float32)
    _, model_idx, catalog_idx = loaded.catalog_view(catalog.version, catalog.index)
    raw = model.score(positions)
    scores = np.full((positions.shape[0], catalog.size), NEG_INF, dtype=np.float32)
    scores[:, catalog_idx] = raw[:, model_idx]
    return scores


_GATHER_ROWS = 4096


def _gather_rows(loaded: LoadedModel, source: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``source[positions]``, copied a slice at a time: the pages of a memory-mapped model that
    each slice read are dropped before the next, so at most a slice's worth is ever resident
    beside the chunk's working set."""
    out = np.empty((positions.shape[0], *source.shape[1:]), dtype=source.dtype)
    for start in range(0, positions.shape[0], _GATHER_ROWS):
        stop = start + _GATHER_ROWS
        out[start:stop] = source[positions[start:stop]]
        loaded.release_pages()
    return out


def top_candidates(scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``limit`` best finite scores, best first, ties by position.

    Returns ``(positions int64, scores float32)``, padded with -1 / -inf. The readable form
    (a stable sort of every row); the job and the API select the same items without sorting
    (:mod:`app.services.recommend.kernel`, :func:`app.services.recommend.candidates._best`).
    """
    size = scores.shape[1]
    limit = min(limit, size)
    clean = np.where(np.isfinite(scores), scores, NEG_INF)  # NaN and +inf are never candidates
    top = np.argsort(-clean, axis=1, kind="stable")[:, :limit]
    values = np.take_along_axis(clean, top, axis=1)
    top[~np.isfinite(values)] = -1
    return top.astype(np.int64), values


def gate_rows(
    allowed_by_class: np.ndarray, risk: np.ndarray, holdings: sp.csr_matrix, exclude_held: bool
) -> np.ndarray:
    """The gate for a block (customers x catalogue): the risk class's row, minus holdings.

    The same answer as :func:`recommenders.policy.allowed_mask` (the serving snapshot's
    ``allowed_by_class`` is built by it), gathered per customer instead of recomputed.
    """
    allowed = allowed_by_class[risk]
    if exclude_held and holdings.nnz:
        held_rows = np.repeat(np.arange(holdings.shape[0]), np.diff(holdings.indptr))
        allowed[held_rows, holdings.indices] = False
    return np.asarray(allowed)


def gated_scores(
    scores: np.ndarray,
    penalty: np.ndarray,
    risk: np.ndarray,
    holdings: sp.csr_matrix,
    exclude_held: bool,
) -> np.ndarray:
    """Gate a block of scores in place: add the risk class's penalty row (0 / -inf), then sink
    held products with one scatter from the holdings' sparse rows."""
    scores += penalty[risk]
    if exclude_held and holdings.nnz:
        held_rows = np.repeat(np.arange(holdings.shape[0]), np.diff(holdings.indptr))
        scores[held_rows, holdings.indices] = NEG_INF
    return scores


@dataclass(frozen=True)
class BlockInputs:
    """What the block path needs of a catalogue, computed once per run."""

    allowed_by_class: np.ndarray  # bool (6 x catalogue)
    penalty: np.ndarray  # float32 (6 x catalogue): 0 allowed, -inf not (unknown products too)
    categories: np.ndarray  # int64 category code per position
    pools: Pools
    packed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pools for the kernel

    @classmethod
    def of(cls, catalog: CatalogSnapshot, layout: FactorLayout | None) -> BlockInputs:
        penalty = penalty_by_risk_class(catalog.risk_level, catalog.active)
        if layout is not None:
            penalty[:, layout.unknown] = NEG_INF
        pools = build_pools(catalog)
        return cls(
            np.ascontiguousarray(catalog.allowed_by_class, dtype=np.bool_),
            penalty,
            np.asarray(catalog.category_list, dtype=np.int64),
            pools,
            pools.packed(),
        )


def score_lists(
    inputs: BlockInputs,
    scores: np.ndarray | None,
    scored: np.ndarray,
    risk: np.ndarray,
    holdings: sp.csr_matrix,
    pool_index: np.ndarray,
    k: int,
    cap: int | None,
    exclude_held: bool,
) -> BlockLists:
    """Final lists for a block: gate, top candidates, caps, backfill. What the job runs.

    ``scores`` are raw model scores for the rows where ``scored`` is set (the others get no
    candidates: popularity only, as non-personalised customers do). One compiled pass per row
    (:mod:`app.jobs.precompute.kernel`); :func:`score_lists_reference` is the same in numpy.
    """
    positions, values, source = block_lists(
        scores,
        scored,
        risk,
        holdings.indptr,
        holdings.indices,
        exclude_held,
        inputs.allowed_by_class,
        inputs.penalty,
        inputs.categories,
        k,
        candidate_limit(k),
        cap,
        pool_index,
        inputs.packed,
    )
    return BlockLists(positions, values, source)


def score_lists_reference(
    inputs: BlockInputs,
    scores: np.ndarray | None,
    scored: np.ndarray,
    risk: np.ndarray,
    holdings: sp.csr_matrix,
    pool_index: np.ndarray,
    k: int,
    cap: int | None,
    exclude_held: bool,
) -> BlockLists:
    """:func:`score_lists` as array operations (the readable form the tests compare against)."""
    n = risk.shape[0]
    limit = candidate_limit(k)
    allowed = gate_rows(inputs.allowed_by_class, risk, holdings, exclude_held)
    width = min(limit, allowed.shape[1])
    top = np.full((n, width), -1, dtype=np.int64)
    values = np.full((n, width), NEG_INF, dtype=np.float32)
    if scores is not None and scored.any():
        part = holdings if scored.all() else holdings[np.flatnonzero(scored)]
        gated = gated_scores(scores.copy(), inputs.penalty, risk[scored], part, exclude_held)
        top[scored], values[scored] = top_candidates(gated, limit)
    return assemble_block(top, values, allowed, pool_index, inputs.pools, inputs.categories, k, cap)


def reason_code_ids(
    lists: BlockLists, fast: np.ndarray, personalised: np.ndarray, no_segment: np.ndarray
) -> np.ndarray:
    """Per item, which reason codes it carries (an index into :attr:`ChunkScorer.code_table`):
    0..2 by source, 3 a candidate of a customer without a segment, 4 without consent."""
    code_id = lists.source.astype(np.int64)
    code_id[(fast & no_segment)[:, None] & (code_id == FROM_CANDIDATES)] = 3
    code_id[~personalised] = 4
    return code_id


def format_rows(
    batch_id: str,
    customer_ids: np.ndarray | list[str],
    r: np.ndarray,
    c: np.ndarray,
    lists: BlockLists,
    code_id: np.ndarray,
    product_ids: np.ndarray,
    code_table: np.ndarray,
) -> BatchRows:
    """The batch rows of items ``(r, c)`` (row-major order), scores rounded as the API does.

    Columns, not row objects: customers, products and reason codes as codes into the chunk's
    customer IDs, the catalogue and ``code_table``; the writers decode them (see
    :mod:`app.jobs.precompute.rows`)."""
    return BatchRows(
        batch_id,
        customer_ids.tolist() if isinstance(customer_ids, np.ndarray) else customer_ids,
        r.astype(np.int64, copy=False),
        (c + 1).astype(np.int64, copy=False),
        product_ids.tolist(),
        lists.positions[r, c].astype(np.int64, copy=False),
        round_scores(lists.scores[r, c]),
        code_table.tolist(),
        code_id[r, c].astype(np.int64, copy=False),
    )


@dataclass
class ChunkResult:
    rows: BatchRows
    outcomes: dict[str, int]


class ChunkScorer:
    """Turns a block of customers into batch rows, with the serving service's assembly."""

    def __init__(
        self,
        service: RecommendationService,
        loaded: LoadedModel,
        catalog: CatalogSnapshot,
        k: int,
        as_of: datetime,
        read_profile: object | None = None,
    ) -> None:
        self.service = service
        self.loaded = loaded
        self.catalog = catalog
        self.k = k
        self.as_of = as_of
        self.request = RecommendRequest(k=k, strategy=loaded.strategy)
        self.exclude_held = None not in service.settings.placements_showing_held
        self.layout = factor_layout(loaded, self.catalog)
        # The fusion explains each item by its members: live path per customer, exactly as served.
        self.vectorised = loaded.algorithm != "fusion"
        self.read_profile = read_profile
        code = R.reason_for_algorithm(loaded.algorithm)
        base = R.reason(code)["code"]
        no_segment = R.POPULAR if code == R.POPULAR_IN_SEGMENT else base
        self.code_table = np.asarray(
            [base, R.POPULAR_IN_SEGMENT, R.POPULAR, no_segment, R.NON_PERSONALISED], dtype=object
        )
        self.inputs = BlockInputs.of(self.catalog, self.layout)

    def score(self, batch_id: str, block: Block) -> ChunkResult:
        """The batch rows and outcome counts of one chunk of customers."""
        n = block.size
        personalised = block.consent
        positions = self.loaded.customer_positions(block.customer_ids)
        no_segment = np.fromiter((s is None for s in block.segments.tolist()), dtype=bool, count=n)
        fast = personalised & (positions >= 0) & self.vectorised
        # Personalised customers off the fast path (cold start, fusion) take the live route.
        on_block = fast | ~personalised
        risk = block.effective_risk.astype(np.int64)
        holdings: sp.csr_matrix = block.holdings
        scores = None
        if fast.any():
            scores = score_block(self.loaded, self.catalog, self.layout, positions[fast])
        # Mapped pages are dropped as soon as what was read from them is copied out (here, in
        # score_block, at the end), so they never add to the chunk's peak.
        self._release_pages()
        pools = self.inputs.pools
        pool_index = np.fromiter(
            (
                pools.index_of(s) if f else 0
                for s, f in zip(block.segments.tolist(), fast.tolist(), strict=True)
            ),
            dtype=np.int64,
            count=n,
        )
        lists = score_lists(
            self.inputs,
            scores,
            fast,
            risk,
            holdings,
            pool_index,
            self.k,
            self.service.settings.category_cap,
            self.exclude_held,
        )
        # The score block (customers x catalogue, the chunk's largest array) is not needed for
        # the rows: let it go before they are built.
        del scores
        lengths = (lists.positions >= 0).sum(axis=1)
        code_id = reason_code_ids(lists, fast, personalised, no_segment)
        r, c = np.nonzero((lists.positions >= 0) & on_block[:, None])
        out = format_rows(
            batch_id,
            block.customer_ids,
            r,
            c,
            lists,
            code_id,
            self.catalog.product_ids,
            self.code_table,
        )
        outcomes: dict[str, int] = {}
        empty = int((on_block & (lengths == 0)).sum())
        for name, count in (
            (NO_ELIGIBLE_PRODUCT, empty),
            (PERSONALISED, int((fast & (lengths > 0)).sum())),
            (NON_PERSONALISED, int((~personalised & (lengths > 0)).sum())),
        ):
            if count:
                outcomes[name] = count
        live = np.flatnonzero(~on_block)
        if live.size:
            out = self._merge_live(batch_id, block, positions, live, out, outcomes)
        # The live route may have read mapped rows again.
        self._release_pages()
        return ChunkResult(out, outcomes)

    def _release_pages(self) -> None:
        """Drop the resident pages of every model's memory-mapped customer arrays."""
        for strategy in self.service.models.strategies:
            model = self.service.models.get(strategy)
            if model is not None:
                model.release_pages()

    def _merge_live(
        self,
        batch_id: str,
        block: Block,
        positions: np.ndarray,
        live: np.ndarray,
        block_out: BatchRows,
        outcomes: dict[str, int],
    ) -> BatchRows:
        """Score the customers the block path does not cover one by one through the live
        service, and merge their rows in customer order."""
        customer: list[int] = []
        rank: list[int] = []
        product: list[int] = []
        score: list[float] = []
        code: list[int] = []
        products = list(block_out.products)
        product_code = dict(self.catalog.index)
        codes = list(block_out.codes)
        code_of = {c: i for i, c in enumerate(codes)}
        for i in live.tolist():
            rows, outcome = self._live_rows(batch_id, block, i, bool(positions[i] < 0))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            for _, _, item_rank, product_id, item_score, item_codes in rows:
                customer.append(i)
                rank.append(item_rank)
                score.append(item_score)
                at = product_code.get(product_id)
                if at is None:
                    at = product_code[product_id] = len(products)
                    products.append(product_id)
                product.append(at)
                at = code_of.get(item_codes)
                if at is None:
                    at = code_of[item_codes] = len(codes)
                    codes.append(item_codes)
                code.append(at)
        merged = BatchRows(
            batch_id,
            block_out.customers,
            np.concatenate([block_out.customer, np.asarray(customer, dtype=np.int64)]),
            np.concatenate([block_out.rank, np.asarray(rank, dtype=np.int64)]),
            products,
            np.concatenate([block_out.product, np.asarray(product, dtype=np.int64)]),
            np.concatenate([block_out.score, np.asarray(score, dtype=np.float64)]),
            codes,
            np.concatenate([block_out.code, np.asarray(code, dtype=np.int64)]),
        )
        # Customer order; each customer's rows keep their rank order (a stable sort).
        return merged.take(np.argsort(merged.customer, kind="stable"))

    def _live_rows(
        self, batch_id: str, block: Block, row: int, unknown: bool
    ) -> tuple[list[Row], str]:
        service = self.service
        profile = block.profile(row)
        decision = Gate(
            gate_rows(
                self.inputs.allowed_by_class,
                block.effective_risk[row : row + 1].astype(np.int64),
                block.holdings[row : row + 1],
                self.exclude_held,
            )[0],
            bool(block.consent[row]),
            int(block.effective_risk[row]),
        )
        if decision.personalised and unknown and self.read_profile is not None:
            # Cold start scores declared attributes, so read the full profile as live does.
            profile = self.read_profile(profile.customer_id)  # type: ignore[operator]
        limit = candidate_limit(self.k)
        cands = service._candidates(
            profile.customer_id, profile, decision, self.catalog, self.request, limit
        )
        items = service._assemble(cands, decision, self.catalog, self.request, profile, self.as_of)
        if not items:
            outcome = NO_ELIGIBLE_PRODUCT
        elif not decision.personalised:
            outcome = NON_PERSONALISED
        elif cands.served_from == "fallback":
            outcome = FALLBACK
        elif unknown:
            outcome = COLD_START
        else:
            outcome = PERSONALISED
        cid = profile.customer_id
        rows = [
            (
                batch_id,
                cid,
                item.rank,
                item.product_id,
                item.score,
                "|".join(r["code"] for r in item.reasons),
            )
            for item in items
        ]
        return rows, outcome
