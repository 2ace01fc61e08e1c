"""A split network as two files: the head (stem .. payload) and the tail (rest .. classifier),
each a torch module's weights with the architecture spec, so they can run on different machines.

Written by the re-training (:mod:`nascsim.train.retrain`), read by the end-to-end check over a
lossy channel (:mod:`nascsim.train.channel`).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from nascsim.space import arch_names
from nascsim.train.loop import save_atomic
from nascsim.train.supernet import ChildNet

HEAD_FILE = "head.pt"
TAIL_FILE = "tail.pt"


def export_split(model: ChildNet, split: int, out_dir: str | Path, stats: tuple[list[float], list[float]]) -> tuple[Path, Path]:
    """Save head and tail as separate files: {"spec", "part", "state_dict"} each."""
    out = Path(out_dir)
    head, tail = model.split_modules(split)
    spec = {"space": model.space.name, "arch": list(model.arch), "arch_names": arch_names(model.arch, model.space),
            "split": int(split), "classes": model.classes, "stats": [list(stats[0]), list(stats[1])],
            "proxy": model.proxy.to_dict()}
    hp, tp = out / HEAD_FILE, out / TAIL_FILE
    save_atomic({"spec": spec, "part": "head", "state_dict": head.state_dict()}, hp)
    save_atomic({"spec": spec, "part": "tail", "state_dict": tail.state_dict()}, tp)
    return hp, tp


def load_part(path: str | Path) -> tuple[nn.Sequential, dict]:
    """(module in eval mode, spec) of an exported head or tail file; the module is rebuilt from the
    spec alone and holds only its own part's weights."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no exported head/tail at {path}")
    from nascsim.train.checkpoint import load_checkpoint, require

    blob = load_checkpoint(path)
    if not isinstance(blob.get("part"), str) or blob["part"] not in ("head", "tail") or not isinstance(blob.get("spec"), dict):
        raise ValueError(f"{path} is not an exported head or tail")
    spec = blob["spec"]
    require(blob, path, "state_dict")
    require(spec, f"{path} spec", "space", "arch", "classes", "split")
    from nascsim.train.proxy import Proxy

    net = ChildNet(spec["space"], spec["arch"], spec["classes"], zero_residual=False, proxy=Proxy.from_dict(spec.get("proxy")))
    head, tail = net.split_modules(spec["split"])
    part = head if blob["part"] == "head" else tail
    try:
        part.load_state_dict(blob["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: the stored weights do not fit its spec ({str(exc).splitlines()[0]})") from None
    return part.eval(), spec
