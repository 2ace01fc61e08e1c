"""Where a supernet path stops passing its input on: the spread across images (standard deviation
over a batch of random inputs, averaged over channels and positions) after every layer of a few
paths, and inside the layer given (each module of its head part), BatchNorm on batch statistics
as in training. A spread of 0 means that every image gives the same activations from there on.

    PYTHONPATH=. python scripts/path_activity.py CHECKPOINT [--layer 10] [--ops k3_e1/2,k3_e1/8]

Each path: conv and skip ops drawn at random (seed 3), one op of ``--ops`` at ``--layer``.
docs/torch-stage.md ("The extended space at the CPU proxy") quotes its output.
"""
import argparse
import sys

import numpy as np
import torch

from nascsim.train.pretrain import load_supernet



def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        fail(message)


parser = Parser(description=__doc__.split("\n\n")[0])
parser.add_argument("checkpoint")
parser.add_argument("--layer", type=int, default=10, help="1..22")
parser.add_argument("--ops", default="k3_e1/2,k3_e1/8")
parser.add_argument("--images", type=int, default=256)
args = parser.parse_args()
if not 1 <= args.layer <= 22:
    fail(f"--layer must lie in 1..22, got {args.layer}")
if not 2 <= args.images <= 4096:
    fail(f"--images must lie in 2..4096, got {args.images}")

torch.manual_seed(0)
try:
    net, _ = load_supernet(args.checkpoint, device="cpu")
except (OSError, ValueError) as exc:
    fail(f"cannot load supernet {args.checkpoint!r}: {exc}")
unknown = [n for n in args.ops.split(",") if n not in net.space.op_names]
if unknown:
    fail(f"--ops: {', '.join(unknown)} not an op of the {net.space.name} space")
net.train()
space = net.space
x = torch.randn(args.images, 3, net.proxy.resolution, net.proxy.resolution)
rng = np.random.default_rng(3)
others = [i for i, op in enumerate(space.ops) if op.kind != "bottleneck"]
for name in args.ops.split(","):
    arch = rng.choice(others, space.n_layers)
    arch[args.layer - 1] = space.op_names.index(name)
    h, cells = net.stem(x), []
    with torch.no_grad():
        for i, block in enumerate(net.path(arch.tolist())):
            if i == args.layer - 1 and hasattr(block, "head_part"):
                t = h
                for module in block.head_part:
                    t = module(t)
                    cells.append(f"[{type(module).__name__} {t.std(0).mean().item():.2g}]")
            h = block(h)
            cells.append(f"{i + 1}:{space.ops[arch[i]].name} {h.std(0).mean().item():.2g}")
    print(" ".join(cells))
