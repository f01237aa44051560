"""The policy gate: which products a customer may be shown. One implementation, two forms.

The scalar form (:func:`is_allowed`) answers for one customer and one product and is the
readable statement of the rules. The vectorised forms (:func:`allowed_row`, :func:`allowed_mask`)
answer for one customer against the whole catalogue (the API's hot path) or for a block of
customers (batch precompute). Tests hold the forms equal on random inputs.

The rules (suitability is a regulatory duty, so every rule fails closed):

* only ``active`` products are ever served;
* a product's risk level R1..R5 must not exceed the customer's risk class C1..C5; a missing or
  expired assessment (class ``0``) allows R1 only, and so does an unreadable profile;
* a product with a malformed risk level (``0``) is never served;
* products the customer holds are excluded unless the placement says otherwise;
* a customer without personalisation consent gets only non-personalised items
  (:func:`personalisation_allowed`); the items still pass every rule above.

Risk classes and levels are small integers: ``1..5`` valid, ``0`` missing or unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import scipy.sparse as sp

UNASSESSED = 0
"""Risk class of a customer without a valid assessment (missing, expired or unreadable)."""

MAX_LEVEL_WITHOUT_ASSESSMENT = 1
"""Highest product risk level allowed without a valid assessment: R1 only."""


def parse_level(value: object, prefix: str) -> int:
    """``"C3"`` / ``"R3"`` / ``3`` -> 3; anything missing or malformed -> 0 (fails closed)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | np.integer):
        level = int(value)
    else:
        text = str(value).strip().upper().removeprefix(prefix)
        if not text.isdigit():
            return 0
        level = int(text)
    return level if 1 <= level <= 5 else 0


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {moment!r}")  # pragma: no cover


def effective_risk_class(
    risk_class: object,
    assessed_at: datetime | None,
    now: datetime,
    validity_months: int,
) -> int:
    """The risk class the gate uses: the declared class while the assessment is valid, else 0."""
    level = parse_level(risk_class, "C")
    if level == UNASSESSED or assessed_at is None:
        return UNASSESSED
    if add_months(assessed_at, validity_months) <= now:
        return UNASSESSED
    return level


def max_allowed_level(risk_class: int) -> int:
    """Highest product risk level a customer of ``risk_class`` may be shown."""
    return int(risk_class) if 1 <= int(risk_class) <= 5 else MAX_LEVEL_WITHOUT_ASSESSMENT


def personalisation_allowed(consent: bool | None) -> bool:
    """Personalised ranking needs explicit consent; unknown consent counts as withdrawn."""
    return consent is True


# ---- scalar form -------------------------------------------------------------------------------


def is_allowed(
    *,
    customer_risk_class: int,
    product_risk_level: int,
    product_active: bool,
    held: bool,
    exclude_held: bool = True,
) -> bool:
    """May this customer be shown this product? The rules of the module docstring, one pair."""
    if not product_active:
        return False
    if not 1 <= product_risk_level <= 5:
        return False
    if product_risk_level > max_allowed_level(customer_risk_class):
        return False
    return not (exclude_held and held)


# ---- vectorised forms --------------------------------------------------------------------------


def allowed_row(
    customer_risk_class: int,
    product_risk_level: np.ndarray,
    product_active: np.ndarray,
    held: Iterable[int] | np.ndarray = (),
    *,
    exclude_held: bool = True,
) -> np.ndarray:
    """Boolean mask over products (catalogue order) for one customer.

    ``held`` lists the indices of products the customer holds.
    """
    levels = np.asarray(product_risk_level)
    mask = np.asarray(product_active, dtype=bool) & (levels >= 1)
    mask &= levels <= max_allowed_level(customer_risk_class)
    if exclude_held:
        held_idx = np.asarray(list(held) if not isinstance(held, np.ndarray) else held)
        if held_idx.size:
            mask[held_idx.astype(np.int64)] = False
    return mask


def allowed_mask(
    customer_risk_class: np.ndarray,
    product_risk_level: np.ndarray,
    product_active: np.ndarray,
    holdings: sp.spmatrix | sp.sparray | None = None,
    *,
    exclude_held: bool = True,
) -> np.ndarray:
    """Boolean mask (customers x products) for a block of customers.

    ``holdings`` is a sparse customers x products matrix; a stored entry means "held".
    """
    classes = np.asarray(customer_risk_class, dtype=np.int16)
    limit = np.where((classes >= 1) & (classes <= 5), classes, MAX_LEVEL_WITHOUT_ASSESSMENT)
    levels = np.asarray(product_risk_level, dtype=np.int16)
    product_ok = np.asarray(product_active, dtype=bool) & (levels >= 1)
    mask = (levels[None, :] <= limit[:, None]) & product_ok[None, :]
    if exclude_held and holdings is not None:
        matrix = sp.csr_matrix(holdings)
        if matrix.shape != mask.shape:
            raise ValueError(f"holdings have shape {matrix.shape}, expected {mask.shape}")
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        mask[rows, matrix.indices] = False
    return mask


def allowed_by_risk_class(product_risk_level: np.ndarray, product_active: np.ndarray) -> np.ndarray:
    """The gate before holdings for every risk class at once: row ``c`` is class ``c`` (0..5).

    Serving keeps this (6 x products) table per catalogue snapshot, so one request's gate is a
    row copy plus its holdings; it is :func:`allowed_mask` itself, not a second implementation.
    """
    return allowed_mask(np.arange(6), product_risk_level, product_active)


# ---- diversity ---------------------------------------------------------------------------------


def select_with_category_cap(
    ranked: Sequence[int] | np.ndarray,
    categories: Sequence[int] | np.ndarray,
    k: int,
    cap: int | None,
    already: Sequence[int] = (),
) -> list[int]:
    """Take up to ``k`` items from ``ranked`` (best first) with at most ``cap`` per category.

    ``already`` are items chosen earlier (e.g. pinned promotions); they count towards the caps
    and are never repeated. Items with index ``-1`` are padding and skipped.
    """
    cats = categories.tolist() if isinstance(categories, np.ndarray) else categories
    items = ranked.tolist() if isinstance(ranked, np.ndarray) else ranked
    chosen = [int(i) for i in already]
    seen = set(chosen)
    counts: dict[int, int] = {}
    for item in chosen:
        cat = cats[item]
        counts[cat] = counts.get(cat, 0) + 1
    for raw in items:
        if len(chosen) >= k:
            break
        item = int(raw)
        if item < 0 or item in seen:
            continue
        cat = cats[item]
        if cap is not None and counts.get(cat, 0) >= cap:
            continue
        chosen.append(item)
        seen.add(item)
        counts[cat] = counts.get(cat, 0) + 1
    return chosen[len(already) :]


# ---- explaining removals -----------------------------------------------------------------------

RULES_VERSION = "2026.11-1"
"""Version of the rule set above; bump it whenever a rule's meaning changes (decision records
carry a policy version derived from it and from the serving settings that tune the rules)."""

RULE_INACTIVE = "inactive"
RULE_HELD = "held"
RULE_UNASSESSED = "unassessed_risk"
RULE_SUITABILITY = "suitability"
RULE_CATEGORY_CAP = "category_cap"

REMOVAL_RULES: tuple[str, ...] = (
    "",  # code 0: the gate allows the product
    RULE_INACTIVE,
    RULE_HELD,
    RULE_UNASSESSED,
    RULE_SUITABILITY,
)
"""Rule names by the integer codes of :func:`removal_codes`, in precedence order: a product that
breaks several rules is attributed to the first (a retired product the customer holds is
``inactive``; a held product above the customer's class is ``held``)."""


def removal_codes(
    customer_risk_class: int,
    product_risk_level: np.ndarray,
    product_active: np.ndarray,
    held: np.ndarray,
    *,
    exclude_held: bool = True,
) -> np.ndarray:
    """Which gate rule first blocks each product: ``int8`` codes into :data:`REMOVAL_RULES`.

    The arrays are aligned (any subset of the catalogue: levels, active flags, and whether the
    customer holds each product). ``0`` means allowed, exactly where :func:`is_allowed` is true.
    A product above R1 for a customer without a valid assessment is ``unassessed_risk``; a
    product above the customer's class, or with a malformed risk level, is ``suitability``.
    """
    levels = np.asarray(product_risk_level)
    codes = np.zeros(levels.shape[0], dtype=np.int8)
    unassessed = not 1 <= int(customer_risk_class) <= 5
    too_risky = (levels > max_allowed_level(customer_risk_class)) | (levels < 1)
    if unassessed:
        codes[too_risky & (levels >= 1)] = 3
        codes[levels < 1] = 4
    else:
        codes[too_risky] = 4
    if exclude_held:
        codes[np.asarray(held, dtype=bool)] = 2
    codes[~np.asarray(product_active, dtype=bool)] = 1
    return codes


def category_cap_take(
    categories: np.ndarray,
    available: np.ndarray,
    counts: np.ndarray | None,
    need: np.ndarray,
    cap: int | None,
) -> np.ndarray:
    """:func:`select_with_category_cap` for a block of rows at once, as a mask of taken entries.

    Row ``i`` ranks its entries best first; ``available[i]`` marks the entries it may take
    (padding, items already chosen and repeats are unavailable), ``categories`` gives each
    entry's category code (one row shared by all, or one per row), ``counts[i, c]`` the items
    of category ``c`` chosen earlier (``None``: none) and ``need[i]`` how many more to take.
    An entry is taken when fewer than ``cap`` of its category come before it (earlier choices
    included) and fewer than ``need[i]`` entries are taken before it: the scalar walk's rule.
    """
    avail = np.asarray(available, dtype=bool)
    n, width = avail.shape
    if cap is None or width == 0:
        eligible = avail
    else:
        cats = np.asarray(categories, dtype=np.int64)
        shared = cats.ndim == 1
        # Group entries by category, keeping rank order inside a group (stable sort), so an
        # entry's rank in its category is a running count minus the count at its group start.
        perm = np.argsort(cats, axis=-1, kind="stable")
        sorted_cats = cats[perm] if shared else np.take_along_axis(cats, perm, axis=1)
        grouped = avail[:, perm] if shared else np.take_along_axis(avail, perm, axis=1)
        before = np.cumsum(grouped, axis=1, dtype=np.int32) - grouped
        starts = np.ones(sorted_cats.shape, dtype=bool)
        starts[..., 1:] = sorted_cats[..., 1:] != sorted_cats[..., :-1]
        first = np.where(starts, np.arange(width), 0)
        np.maximum.accumulate(first, axis=-1, out=first)
        if shared:
            rank = before - before[:, first]
        else:
            rank = before - np.take_along_axis(before, first, axis=1)
        if counts is not None:
            earlier = np.asarray(counts, dtype=np.int32)
            if shared:
                rank += earlier[:, sorted_cats]
            else:
                rank += np.take_along_axis(earlier, sorted_cats, axis=1)
        ok = grouped & (rank < cap)
        eligible = np.empty_like(avail)
        if shared:
            eligible[:, perm] = ok
        else:
            np.put_along_axis(eligible, perm, ok, axis=1)
    taken_before = np.cumsum(eligible, axis=1, dtype=np.int32)
    return eligible & (taken_before <= np.asarray(need).reshape(n, 1))


def penalty_by_risk_class(product_risk_level: np.ndarray, product_active: np.ndarray) -> np.ndarray:
    """:func:`allowed_by_risk_class` as an additive float32 table: 0 where allowed, -inf not.

    Adding row ``c`` to a customer's scores leaves allowed products' scores as they are and
    sinks the others, so a block of scores is gated by one gather-and-add instead of a mask.
    """
    allowed = allowed_by_risk_class(product_risk_level, product_active)
    return np.where(allowed, np.float32(0.0), np.float32(-np.inf)).astype(np.float32)
