"""Time supernet training steps on random data: images per second of one thread at a proxy
setting (the throughput figures of docs/torch-stage.md). Three warm-up steps, then the mean of
``--steps`` steps of ``path_loss`` + backward + SGD step, each on ``--lambda-x`` balanced paths.
With ``--eval-images N``, time the evaluation instead: ``--eval-pairs`` uniform pairs on the same
N images at the 6 loss rates, BatchNorm with batch statistics, as the campaign evaluates them
(seconds per pair, 64 images and 6 loss rates).

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/step_speed.py --width 0.25 --resolution 16 \\
        --batch 128 --lambda-x 2 [--bf16]
    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/step_speed.py --eval-images 500 --eval-pairs 6 [--profile]
"""
import argparse
import time

import numpy as np
import torch

from nascsim.space import get_space
from nascsim.train.loop import Recipe, make_optimizer, path_loss
from nascsim.train.proxy import Proxy
from nascsim.train.sampling import epoch_paths
from nascsim.train.supernet import SuperNet

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--width", type=float, default=0.25)
ap.add_argument("--resolution", type=int, default=16)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--lambda-x", type=int, default=2)
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU")
ap.add_argument("--eval-images", type=int, default=0, help="time the evaluation on this many images instead")
ap.add_argument("--eval-pairs", type=int, default=6)
ap.add_argument("--profile", action="store_true", help="with --eval-images: also print torch.profiler's top operators")
args = ap.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
space = get_space("fbnet")
recipe = Recipe(batch_size=args.batch, sharing="entangled-bn", width=args.width, resolution=args.resolution)
model = SuperNet(space, 10, proxy=Proxy(args.width, args.resolution), sharing="entangled-bn")
model = model.to(memory_format=torch.channels_last)
opt = make_optimizer(model, recipe)
archs, splits = epoch_paths(space, args.steps + 3, args.lambda_x, "balanced", np.random.default_rng(0))
x = torch.randn(args.batch, 3, args.resolution, args.resolution).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (args.batch,))

if args.eval_images:
    from nascsim.config import DEFAULT_LOSS_SET
    from nascsim.train.evaluate import default_max_rows, eval_shared
    from nascsim.train.loop import BatchStatistics, Precision
    from nascsim.train.sampling import uniform_pairs

    xe = torch.randn(args.eval_images, 3, args.resolution, args.resolution)
    ye = torch.randint(0, 10, (args.eval_images,))
    a, k = uniform_pairs(space, args.eval_pairs + 2, np.random.default_rng(1))
    rows = default_max_rows(torch.device("cpu"))
    with BatchStatistics(model):
        eval_shared(model, xe, ye, a[:2], k[:2], DEFAULT_LOSS_SET, rows, Precision.for_device(torch.device("cpu")))
        t0 = time.perf_counter()
        eval_shared(model, xe, ye, a[2:], k[2:], DEFAULT_LOSS_SET, rows, Precision.for_device(torch.device("cpu")))
        dt = time.perf_counter() - t0
    if args.profile:
        from torch.profiler import profile

        with BatchStatistics(model), profile() as prof:
            eval_shared(model, xe, ye, a[2:], k[2:], DEFAULT_LOSS_SET, rows, Precision.for_device(torch.device("cpu")))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    print(f"width {args.width} at {args.resolution} px, evaluation of {args.eval_pairs} pairs on {args.eval_images} images "
          f"at {len(DEFAULT_LOSS_SET)} loss rates: {dt:.2f} s, {dt / args.eval_pairs / (args.eval_images / 64):.3f} s per "
          f"(pair, 64 images, {len(DEFAULT_LOSS_SET)} p)")
    raise SystemExit(0)


def step(s: int) -> None:
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        loss = path_loss(model, x, y, archs[s], splits[s], recipe)
    loss.backward()
    opt.step()


for s in range(3):
    step(s)
t0 = time.perf_counter()
for s in range(3, 3 + args.steps):
    step(s)
dt = (time.perf_counter() - t0) / args.steps
print(f"width {args.width} at {args.resolution} px, batch {args.batch}, lambda_x {args.lambda_x}"
      f"{', bf16' if args.bf16 else ''}: {dt * 1000:.0f} ms/step, {args.batch / dt:.0f} images/s")
