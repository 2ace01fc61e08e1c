"""The search objective (eq. 4 of the paper) and what the search observes of it.

    f(a, k) = ε_loss · l_SC(a, k) + ε_lat · max(0, T(a, k) - T_th)                  (eq. 4a)
    l_SC(a, k) = (1/|P|) Σ_{p ∈ P} L(a, k, p)                                        (eq. 4b)

L(a, k, p) is the supernet loss with dropout rate p at split k, T the end-to-end latency of
:mod:`nascsim.hw.latency`. Inside a search the loss term is an *observation*: the surrogate's
expected value plus minibatch noise, b_t shared by the λ samples of a step (one minibatch) and e_i
of each sample, scaled to the minibatch size (:mod:`nascsim.core.engine`, :mod:`nascsim.surrogate.noise`),
so the search sees what a real minibatch would show.

Variants, as flags of one :class:`Objective` (no copies of code):

- ``loss_mode``: ``LOSS_SC`` (l_SC over the loss set: NASC) or ``LOSS_P0`` (loss at p = 0:
  the HWNAS baselines, which search without packet loss);
- ``latency_mode``: ``LAT_SPLIT`` (eq. 3: head + communication + tail: NASC) or ``LAT_DEVICE``
  (whole network on the head device: HWNAS).

When the loss set equals the surrogate's own, l_SC is one prediction of its l_SC model; otherwise
it is the mean of the per-p loss predictions, and each part of its noise the mean of theirs (an
upper bound: it assumes the evaluations of one minibatch at the different p fully correlated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSS_SC, LOSS_P0 = 0, 1
LAT_SPLIT, LAT_DEVICE = 0, 1

# layout of the numba objective vector
O_T_TH, O_EPS_LOSS, O_EPS_LAT, O_LOSS_MODE, O_LAT_MODE, O_USE_LSC, O_P0_SPLIT = range(7)


@dataclass(frozen=True)
class Objective:
    """Eq. 4 with its weights, threshold and variant flags."""

    threshold_ms: float
    eps_loss: float = 1.0
    eps_lat: float = 1.0
    loss_set: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    loss_mode: int = LOSS_SC
    latency_mode: int = LAT_SPLIT

    def vector(self, surrogate_loss_set: tuple[float, ...], n_layers: int) -> np.ndarray:
        """The float vector the numba kernels take (layout ``O_*``)."""
        use_lsc = self.loss_mode == LOSS_SC and _same_set(self.loss_set, surrogate_loss_set)
        return np.array(
            [
                self.threshold_ms,
                self.eps_loss,
                self.eps_lat,
                float(self.loss_mode),
                float(self.latency_mode),
                1.0 if use_lsc else 0.0,
                float(n_layers),
            ]
        )


def _same_set(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-12 for x, y in zip(sorted(a), sorted(b)))


def expected_objective(objective: Objective, surrogate, latency_model, archs: np.ndarray, splits: np.ndarray) -> dict:
    """Numpy reference of eq. 4 on expected values (no noise), for a batch of (arch, split).

    Returns arrays ``f``, ``loss`` (the loss term before weighting) and ``T_ms``.
    """
    from nascsim.hw.latency import breakdown, device_only_latency

    archs = np.atleast_2d(np.asarray(archs, dtype=np.int64))
    splits = np.atleast_1d(np.asarray(splits, dtype=np.int64))
    n = archs.shape[0]
    if objective.loss_mode == LOSS_SC:
        if _same_set(objective.loss_set, surrogate.loss_set):
            loss = surrogate.predict("lsc", archs, splits, np.zeros(n))
        else:
            loss = np.mean(
                [surrogate.predict("loss", archs, splits, np.full(n, p)) for p in objective.loss_set], axis=0
            )
    else:
        loss = surrogate.predict("loss", archs, np.full(n, archs.shape[1]), np.zeros(n))
    if objective.latency_mode == LAT_SPLIT:
        T = np.array([breakdown(latency_model, a, k)["T_ms"] for a, k in zip(archs, splits)])
    else:
        T = np.array([device_only_latency(latency_model, a) for a in archs])
    f = objective.eps_loss * loss + objective.eps_lat * np.maximum(0.0, T - objective.threshold_ms)
    return {"f": f, "loss": loss, "T_ms": T}
