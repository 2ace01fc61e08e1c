"""Loading torch checkpoints without running code from them.

Every checkpoint nascsim writes (supernet and re-training checkpoints, exported heads and tails)
is a dict of tensors and plain data (numbers, strings, lists, dicts, None): the recipe and the
metadata are stored as plain data. They are read with ``torch.load(weights_only=True)``, whose
unpickler admits only those types, so a crafted file cannot run code; any unreadable or foreign
file ends in one ``ValueError`` line naming it. Its plain data may nest at most
:data:`nascsim.safe_load.MAX_DEPTH` levels, and every reader checks the fields it uses
(:func:`require`: types and ranges, e.g. classes in 1..1000) before using them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from nascsim.safe_load import (StructureError, check_nesting, need_classes, need_dict, need_float, need_int,
                               need_list, need_str, short)
from nascsim.space import get_space


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
    check_nesting(state, str(path))
    if kind is not None and (not isinstance(state.get(kind_key), str) or state[kind_key] != kind):
        raise ValueError(f"{path} is not a {kind} checkpoint")
    return state


# -- the fields a checkpoint's reader relies on ---------------------------------------------------

def _recipe(v, where: str):
    from nascsim.train.recipe import Recipe

    try:
        return Recipe.from_dict(need_dict(v, where))
    except StructureError:
        raise
    except (TypeError, ValueError) as exc:
        raise StructureError(f"{where}: {short(str(exc), 120)}") from None


def _log(v, where: str) -> list:
    for i, entry in enumerate(need_list(v, where, 100_000)):
        need_dict(entry, f"{where}[{i}]")
    return v


def _stats(v, where: str) -> list:
    pair = need_list(v, where)
    if len(pair) != 2:
        raise StructureError(f"{where} must be [mean, std], got {short(v)}")
    for name, values, low in (("mean", pair[0], -1e3), ("std", pair[1], 1e-12)):
        vals = need_list(values, f"{where} {name}")
        if len(vals) != 3:
            raise StructureError(f"{where} {name} must hold 3 channel values, got {short(values)}")
        for x in vals:
            need_float(x, f"{where} {name}", low, 1e3)
    return v


def _arch(v, where: str) -> list:
    items = need_list(v, where, 64)
    return [need_int(x, f"{where} item", 0, 63) for x in items]


def _optional_int(v, where: str):
    return None if v is None else need_int(v, where, 1, 10**12)


def _optional_str(v, where: str):
    return None if v is None else need_str(v, where)


FIELDS: dict[str, Callable] = {
    "space": lambda v, w: get_space(need_str(v, w, 64)).name,
    "classes": need_classes,
    "recipe": _recipe,
    "epoch": lambda v, w: need_int(v, w, 0, 10**6),
    "log": _log,
    "model": need_dict,
    "optimizer": need_dict,
    "state_dict": need_dict,
    "valid_images": lambda v, w: need_int(v, w, 1, 10**12),
    "train_images": lambda v, w: need_int(v, w, 0, 10**12),
    "train_images_cap": _optional_int,
    "stats": _stats,
    "dataset": need_str,
    "dataset_source": need_str,
    "git_commit": _optional_str,
    "device": need_str,
    "torch": need_str,
    "arch": _arch,
    "split": lambda v, w: need_int(v, w, 0, 64),
}


def require(state: dict, path: str | Path, *names: str) -> None:
    """Check the fields ``names`` of a loaded checkpoint (or of its ``spec``) before they are used:
    ``ValueError`` in one line naming the checkpoint, the field and its value when one is missing
    or of the wrong type or range (a list where a dict is, classes -1 or 10^7, ...)."""
    for name in names:
        if name not in state:
            raise StructureError(f"{path} is not a usable checkpoint: it lacks {name!r}")
        FIELDS[name](state[name], f"{path}: {name}")
