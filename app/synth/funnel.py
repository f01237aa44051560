"""One session's behaviour: how likely a view leads to a click, an application and a purchase,
and how long each step takes. Also the expected number of events a session yields, which turns
a target event count into a session rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.synth.affinity import affinity
from app.synth.catalogue import Catalogue
from app.synth.config import SynthConfig
from app.synth.customers import Population

EXPLORE = 0.12  # share of views that come from banners and browsing, not from taste
# Credit and insurance need underwriting, so fewer applications end in a purchase.
_CONVERSION = {"loan": 0.6, "insurance": 0.8, "card": 1.1}
# Mean days between applying and buying.
_DECISION_DAYS = {"loan": 6.0, "insurance": 3.0, "wealth": 2.0, "fund": 1.0}
_DEFAULT_DECISION_DAYS = 0.5
_SAMPLE = 20_000


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def explore_weights(catalogue: Catalogue) -> npt.NDArray[np.float64]:
    """Chance that a browsing view lands on each product: popularity among launched ones."""
    weights = np.exp(catalogue.popularity.astype(np.float64))
    weights[catalogue.available_from == np.iinfo(np.int64).max] = 0.0
    normalised: npt.NDArray[np.float64] = weights / weights.sum()
    return normalised


@dataclass(frozen=True)
class Funnel:
    """Step probabilities for (customer, product) pairs, centred on a typical affinity."""

    catalogue: Catalogue
    population: Population
    content: npt.NDArray[np.float32]
    centre: float
    conversion: npt.NDArray[np.float32]
    decision_days: npt.NDArray[np.float32]

    @classmethod
    def build(
        cls, catalogue: Catalogue, population: Population, content: npt.NDArray[np.float32]
    ) -> Funnel:
        names = np.array(catalogue.categories)[catalogue.category]
        conversion = np.array([_CONVERSION.get(str(c), 1.0) for c in names], np.float32)
        days = [_DECISION_DAYS.get(str(c), _DEFAULT_DECISION_DAYS) for c in names]
        sample = min(len(population), _SAMPLE)
        considered = population.considered[:sample]
        who = np.repeat(np.arange(sample), considered.shape[1])
        scores = affinity(
            population.latent[who], population.profile[who], considered.ravel().astype(np.intp),
            catalogue, content,
        )  # fmt: skip
        return cls(
            catalogue=catalogue,
            population=population,
            content=content,
            centre=float(np.mean(scores, dtype=np.float64)),
            conversion=conversion,
            decision_days=np.array(days, np.float32),
        )

    def probabilities(
        self, who: npt.NDArray[np.int32] | npt.NDArray[np.intp], what: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """P(click | view), P(apply | click), P(purchase | apply) per pair."""
        pop, cat = self.population, self.catalogue
        centred = affinity(pop.latent[who], pop.profile[who], what, cat, self.content)
        centred -= np.float32(self.centre)
        above = cat.risk[what] > pop.risk_tolerance[who]
        # Customers rarely apply for, and are rarely sold, products above their risk appetite.
        p_click = _sigmoid(-0.7 + 0.7 * centred)
        p_apply = _sigmoid(-1.6 + 0.8 * centred) * np.where(above, 0.1, 1.0).astype(np.float32)
        p_buy = _sigmoid(0.5 * centred) * self.conversion[what]
        p_buy = np.minimum(p_buy * np.where(above, 0.3, 1.0), 1.0).astype(np.float32)
        return p_click, p_apply, p_buy

    def _yield(
        self, who: npt.NDArray[np.intp], what: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float32]:
        p_click, p_apply, p_buy = self.probabilities(who, what)
        return (1.0 + p_click * (1.0 + p_apply * (1.0 + p_buy))).astype(np.float32)

    def events_per_session(self, config: SynthConfig) -> float:
        """Expected events per session, counting sessions lost to unavailable products."""
        cat, pop = self.catalogue, self.population
        start, end = config.start_s, config.end_s
        open_from = np.maximum(cat.available_from, start)
        open_span = np.clip(np.minimum(cat.available_to, end) - open_from, 0, None)
        available = open_span / (end - start)

        sample = min(len(pop), _SAMPLE)
        what = pop.considered[:sample].ravel().astype(np.intp)
        who = np.repeat(np.arange(sample), pop.considered.shape[1])
        taste = float(np.mean(available[what] * self._yield(who, what), dtype=np.float64))

        few = min(len(pop), _SAMPLE // 10)
        who = np.repeat(np.arange(few), len(cat))
        what = np.tile(np.arange(len(cat)), few)
        weight = (explore_weights(cat) * available)[what]
        browse = float(np.sum(weight * self._yield(who, what), dtype=np.float64)) / few
        return (1.0 - EXPLORE) * taste + EXPLORE * browse
