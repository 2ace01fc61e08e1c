"""Where a surrogate's accuracies come from, in one line for every output that shows them.

The sweep's printed summary and ``summary.txt``, every figure, ``bench.md`` / ``bench.json`` and
the API's results name the accuracy surrogate(s), the data their supernet was trained and
evaluated on (dataset; proxy setting; device) and -- while the model card says so -- that they
are provisional. Everything is read from the model card (:attr:`Surrogate.card`):

- the supernet's proxy setting from ``card["supernet"]["recipe"]`` (``width``, ``resolution``;
  :mod:`nascsim.train.proxy`), or "full width" when the card records none (cards written
  before proxy settings existed trained full-width supernets);
- the training device from ``card["supernet"]["train_device"]`` or ``["device"]``;
- provisional when ``card["provisional"]`` is true, or the card's free-text ``note`` (``nascsim
  surrogate fit --note``) calls it provisional.

>>> class Card:  # any object with id, dataset and card, e.g. a Surrogate
...     def __init__(self, id, card): self.id, self.dataset, self.card = id, "CIFAR-10", card
>>> weak = Card("drop50-12ep", {"supernet": {"device": "NVIDIA H200"}, "note": "PROVISIONAL and WEAK"})
>>> proxy = Card("proxy-30ep", {"supernet": {"train_device": "cpu", "recipe": {"width": 0.25, "resolution": 16}}})
>>> describe(weak)
'CIFAR-10, full width, GPU supernet, PROVISIONAL'
>>> provenance_line([weak, proxy])
'accuracy surrogates: drop50-12ep (CIFAR-10, full width, GPU supernet, PROVISIONAL); proxy-30ep (CIFAR-10, proxy width 0.25 at 16 px, CPU supernet); see `nascsim surrogate show`'
"""

from __future__ import annotations

import re
from typing import Iterable

INPUT_PX = 32  # the full model's input resolution (nascsim.space.INPUT_RESOLUTION)
SHOW = "see `nascsim surrogate show`"


def _card(s) -> dict:
    card = getattr(s, "card", None)
    return card if isinstance(card, dict) else {}


def _record(s) -> dict:
    rec = _card(s).get("supernet")
    return rec if isinstance(rec, dict) else {}


def is_provisional(s) -> bool:
    """Whether the model card of ``s`` marks it provisional (a ``provisional`` flag, or a note
    that says so)."""
    card = _card(s)
    if isinstance(card.get("provisional"), bool):
        return card["provisional"]
    return bool(re.search(r"\bprovisional\b", str(card.get("note") or ""), flags=re.I))


def setting(s) -> str:
    """The supernet's scale: ``"proxy width 0.25 at 16 px"``, or ``"full width"``."""
    rec = _record(s)
    recipe = rec.get("recipe") if isinstance(rec.get("recipe"), dict) else rec
    width, px = recipe.get("width", 1.0), recipe.get("resolution", INPUT_PX)
    try:
        width, px = float(width), int(px)
    except (TypeError, ValueError):
        return "full width"
    if width == 1.0 and px == INPUT_PX:
        return "full width"
    return f"proxy width {width:g} at {px} px"


def device(s) -> str | None:
    """``"GPU"`` or ``"CPU"`` (the device the supernet was trained on), or None when not recorded."""
    rec = _record(s)
    text = rec.get("train_device", rec.get("device"))
    if not isinstance(text, str) or not text:
        return None
    return "CPU" if text.lower().startswith("cpu") else "GPU"


def describe(s) -> str:
    """Data and status of one surrogate: dataset, proxy setting, training device, and
    ``PROVISIONAL`` when its card says so (an object without a model card: its dataset only)."""
    dataset = str(getattr(s, "dataset", "") or "dataset not recorded")
    if not _card(s):
        return f"{dataset}, no model card"
    parts = [dataset, setting(s)]
    dev = device(s)
    if dev:
        parts.append(f"{dev} supernet")
    if is_provisional(s):
        parts.append("PROVISIONAL")
    return ", ".join(parts)


def provenance_line(surrogates: Iterable) -> str:
    """One line naming each surrogate (distinct by id, sorted) with :func:`describe`."""
    by_id = {}
    for s in surrogates:
        by_id.setdefault(str(getattr(s, "id", type(s).__name__)), s)
    items = [f"{sid} ({describe(s)})" for sid, s in sorted(by_id.items())]
    line = ("accuracy surrogate: " if len(items) == 1 else "accuracy surrogates: ") + "; ".join(items)
    return line + (f"; {SHOW}" if any(is_provisional(s) for s in by_id.values()) else "")


def of_record(record: dict, roles: dict) -> str:
    """The provenance line of one search record: the surrogates of ``roles`` (``{"dropout": s,
    "no_dropout": s}``) that searched or judged it (its ``search_surrogate`` and ``surrogate``)."""
    used = {record.get("surrogate"), record.get("search_surrogate")}
    return provenance_line(s for s in roles.values() if getattr(s, "id", None) in used)
