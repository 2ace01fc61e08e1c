"""The torch stage: data loaders, the single-path one-shot supernet, its pre-training (Algorithm 1,
lines 2-4), the supernet evaluations that feed the accuracy surrogate, and the re-training and
split confirmation of final candidates.

Importing this package does not import torch; its submodules do. :func:`require_torch` gives the
one-line error the command line shows when the optional ``train`` extra is missing.
"""

from __future__ import annotations


def require_torch() -> None:
    """Raise ``ImportError`` with an install hint when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError(
            "the torch stage needs torch; install the optional 'train' extra from the nascsim checkout: "
            "pip install '.[train]' (or pip install -e '.[train]' for an editable install)"
        ) from None
