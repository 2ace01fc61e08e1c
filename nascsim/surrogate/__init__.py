"""The accuracy surrogate: expected loss, accuracy and l_SC (eq. 4) of (architecture, split, p),
gradient-boosted trees fitted from supernet evaluations and predicted by numba kernels.

Example::

    from nascsim.surrogate import default_surrogates
    s = default_surrogates()["dropout"]
    s.predict("lsc", archs, splits, ps)        # archs (n, 22) int64, splits (n,) int64, ps (n,)

Modules: :mod:`~nascsim.surrogate.evals` (read/validate evaluation files), ``features`` (the
feature vector), ``fit`` (boosting + CV + noise model; imports scikit-learn lazily), ``export``
(trees -> flat arrays), ``predict`` (numba kernels),
``model`` (Surrogate, file format, defaults),
``report`` (held-out quality), ``effect`` (the effect of packet loss, predicted and measured).
"""

from nascsim.surrogate.model import Surrogate, default_surrogates, load_surrogate, save_surrogate

__all__ = ["FitOptions", "Surrogate", "default_surrogates", "fit_surrogate", "load_surrogate", "save_surrogate"]


def __getattr__(name: str):
    """``FitOptions`` and ``fit_surrogate`` on first use: fitting reads evaluation files (pandas,
    pyarrow), which loading and predicting never need, so a search starts without them."""
    if name in ("FitOptions", "fit_surrogate"):
        from nascsim.surrogate import fit

        return getattr(fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
