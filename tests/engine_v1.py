"""The frozen engine of commit 4968e2b: its surrogates and its outputs (tests/fixtures/engine_v1/).

``load_frozen(name)`` reads one of the frozen surrogate files (``"dropout"``, ``"no_dropout"``,
``"deep-lsc"``); ``frozen_cases()`` the recorded outputs (see ``record_v1.py`` there).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine_v1"


@functools.lru_cache(maxsize=None)
def load_frozen(name: str):
    from nascsim.surrogate.model import surrogate_from_doc

    doc = json.loads((FIXTURES / f"fbnet-{name}.json").read_text())
    return surrogate_from_doc(doc, f"frozen surrogate {name!r}")


def frozen_sets() -> dict:
    deep = load_frozen("deep-lsc")
    return {"shipped": {"dropout": load_frozen("dropout"), "no_dropout": load_frozen("no_dropout")},
            "deep": {"dropout": deep, "no_dropout": deep}}


@functools.lru_cache(maxsize=None)
def frozen_outputs() -> dict:
    return json.loads((FIXTURES / "outputs.json").read_text())
