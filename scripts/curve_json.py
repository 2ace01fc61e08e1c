"""The training curve of a supernet checkpoint as a small JSON (docs/data/*-curve.json): its id,
setting, recipe and per-epoch log (loss, images/s, the monitor's accuracy of the same 16 random
(arch, split) pairs on 1,000 held-out images at p = 0), with the command, machine and wall time
of the run given on the command line.

    PYTHONPATH=. python scripts/curve_json.py runs/p45-w025/checkpoint.pt \\
        docs/data/supernet-w0.25-16px-drop50-45min-curve.json "COMMAND" "MACHINE" WALL_SECONDS
"""
import json
import sys

import torch

if len(sys.argv) != 6:
    print(__doc__.split("\n\n")[-1].strip(), file=sys.stderr)
    raise SystemExit(2)
checkpoint, out, command, machine, wall = sys.argv[1:6]
state = torch.load(checkpoint, map_location="cpu", weights_only=True)
keys = ["id", "space", "dataset", "proxy", "recipe", "train_images", "valid_images", "torch", "device", "git_commit", "precision"]
doc = {k: state.get(k) for k in keys}
doc.update(command=command, machine=machine, wall_s=float(wall),
           monitor="16 fixed uniform (arch, split) pairs, 1,000 held-out images, p = 0, BatchNorm on batch statistics",
           train_s=round(sum(e["s"] for e in state["log"]), 1), log=state["log"])
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
print(out, doc["id"], doc["train_s"], doc["git_commit"])
