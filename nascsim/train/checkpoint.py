"""Loading torch checkpoints without running code from them.

Every checkpoint nascsim writes (supernet and re-training checkpoints, exported heads and tails)
is a dict of tensors and plain data (numbers, strings, lists, dicts, None): the recipe and the
metadata are stored as plain data. They are read with ``torch.load(weights_only=True)``, whose
unpickler admits only those types, so a crafted file cannot run code; any unreadable or foreign
file ends in one ``ValueError`` line naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch


def load_checkpoint(path: str | Path, kind: str | None = None, kind_key: str = "kind") -> dict:
    """The dict stored at ``path`` (tensors on the CPU); ``kind`` checks ``d[kind_key]``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = [ln for ln in lines if "Unsupported global" in ln or "error:" in ln.lower()]
        first = (why or lines or [exc.__class__.__name__])[0]
        raise ValueError(f"{path} is not a readable nascsim checkpoint ({exc.__class__.__name__}: {first[:200]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a nascsim checkpoint dict")
    if kind is not None and state.get(kind_key) != kind:
        raise ValueError(f"{path} is not a {kind} checkpoint")
    return state
