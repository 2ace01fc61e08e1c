"""How bottleneck ops in the sampled paths slow an extended-space supernet down: ``nascsim
supernet train`` with the op sampler changed after it draws each epoch's pairs (the tool itself
has no such option; docs/torch-stage.md, "The extended space at the CPU proxy", quotes the runs).

    PYTHONPATH=. python scripts/bottleneck_probe.py keep Q  -- SUPERNET-TRAIN-OPTIONS
    PYTHONPATH=. python scripts/bottleneck_probe.py at-split S -- SUPERNET-TRAIN-OPTIONS

- ``keep Q``: each sampled bottleneck op stays with probability Q, else becomes a conv or skip op
  drawn uniformly (Q = 0: no bottleneck in any trained path; Q = 1: the tool's sampler);
- ``at-split S``: no bottleneck op anywhere, except in a share S of the pairs whose split k >= 1,
  where layer k (the layer the split follows) gets a bottleneck op drawn uniformly: the payload is
  then the bottleneck's depthwise output, the place the extended space adds them for.

The monitor's pairs stay uniform over the whole extended space.
"""
import sys

import numpy as np

import nascsim.train.sampling as sampling
from nascsim.cli import main

if len(sys.argv) < 4 or sys.argv[1] not in ("keep", "at-split") or sys.argv[3] != "--":
    print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
    raise SystemExit(2)
mode = sys.argv[1]
try:
    share = float(sys.argv[2])
except ValueError:
    share = float("nan")
if not 0 <= share <= 1:
    print(f"Error: {mode} takes a share in [0, 1], not {sys.argv[2]!r}", file=sys.stderr)
    raise SystemExit(2)
drawn = sampling.epoch_paths


def epoch_paths(space, steps, lambda_x, how, rng):
    archs, splits = drawn(space, steps, lambda_x, how, rng)
    bottleneck = np.array([op.kind == "bottleneck" for op in space.ops])
    others, bottlenecks = np.flatnonzero(~bottleneck), np.flatnonzero(bottleneck)
    swap = bottleneck[archs] & ((rng.random(archs.shape) >= share) if mode == "keep" else True)
    archs[swap] = rng.choice(others, size=int(swap.sum()))
    if mode == "at-split":
        flat, k = archs.reshape(-1, space.n_layers), splits.reshape(-1)
        put = np.flatnonzero((rng.random(k.size) < share) & (k >= 1))
        flat[put, k[put] - 1] = rng.choice(bottlenecks, size=put.size)
    return archs, splits


sampling.epoch_paths = epoch_paths  # read by nascsim.train.lane at call time
import nascsim.train.pretrain as pretrain  # noqa: E402  (it imported the name)

pretrain.epoch_paths = epoch_paths
main(sys.argv[4:])
