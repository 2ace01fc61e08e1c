"""The frozen engine of commit 4968e2b: its surrogates and its outputs (tests/fixtures/engine_v1/).

``load_frozen(name)`` reads one of the frozen surrogate files (``"dropout"``, ``"no_dropout"``,
``"deep-lsc"``); ``frozen_outputs()`` the recorded outputs (see ``record_v1.py`` there).

The files are format version 1, whose noise model is one sd per observation on the evaluation
files' 1,000-image batches, all of it independent between samples. They are read as the version-2
document that says exactly that (``n_images`` 1000, every shared share 0), so that
``noise="independent"`` with ``minibatch=1000`` is the noise model of that commit.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine_v1"
N_IMAGES = 1000  # images per evaluation batch of the files the frozen surrogates were fitted on
OLD_NOISE = {"noise": "independent", "minibatch": N_IMAGES}  # the frozen engine's noise model


@functools.lru_cache(maxsize=None)
def load_frozen(name: str):
    from nascsim.surrogate.model import surrogate_from_doc

    doc = json.loads((FIXTURES / f"fbnet-{name}.json").read_text())
    assert doc["format_version"] == 1
    noise = doc["noise"]
    noise["n_images"] = N_IMAGES
    noise["shared"] = {"loss": [0.0] * len(noise["p"]), "acc": [0.0] * len(noise["p"]), "lsc": 0.0}
    doc["format_version"] = 2
    return surrogate_from_doc(doc, f"frozen surrogate {name!r}")


def frozen_sets() -> dict:
    deep = load_frozen("deep-lsc")
    return {"shipped": {"dropout": load_frozen("dropout"), "no_dropout": load_frozen("no_dropout")},
            "deep": {"dropout": deep, "no_dropout": deep}}


@functools.lru_cache(maxsize=None)
def frozen_outputs() -> dict:
    return json.loads((FIXTURES / "outputs.json").read_text())
