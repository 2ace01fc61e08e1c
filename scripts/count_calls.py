"""Operator calls (a proxy for GPU kernel launches, which these launch-bound nets pay per call) of
the supernet's evaluation and training step: one path at a time versus several paths per call
(nascsim.train.paths.forward_paths). Counts the aten operators torch dispatches (views
excluded), the stacking and per-path BatchNorm of the batched calls included; no timing.

    PYTHONPATH=. python scripts/count_calls.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nascsim.train.loop import BatchStatistics
from nascsim.train.paths import forward_paths
from nascsim.train.sampling import uniform_pairs
from nascsim.train.supernet import SuperNet, split_dropout


VIEWS = {"view", "_unsafe_view", "unflatten", "flatten", "narrow", "slice", "select", "t", "transpose", "expand",
         "reshape", "detach", "alias", "as_strided", "permute", "unsqueeze", "squeeze", "_reshape_alias"}


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in VIEWS:
            self.n += 1
        return func(*args, **(kwargs or {}))


def count(model, fn) -> int:
    with _Count() as c:
        fn()
    return c.n


def main() -> None:
    torch.manual_seed(0)
    model = SuperNet("fbnet", 10)
    x = torch.randn(4, 3, 32, 32)
    ps = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    rng = np.random.default_rng(0)
    print("evaluation at 6 p (operator calls per pair)")
    for m in (1, 8, 50):
        archs, splits = uniform_pairs(model.space, m, rng)

        def single():
            for a, k in zip(archs, splits):
                z = model.forward_head(x, a, int(k))
                for p in ps:
                    model.forward_tail(split_dropout(z, p), a, int(k))

        with BatchStatistics(model):
            c1 = count(model, single)
            c2 = count(model, lambda: forward_paths(model, x, archs, splits, ps, shared=True))
        print(f"  {m:3d} pairs per call: one path at a time {c1 / m:7.1f}, several per call {c2 / m:7.1f} ({c1 / c2:.1f}x fewer)")
    tot1 = tot2 = 0
    for _ in range(200):
        archs, splits = uniform_pairs(model.space, 2, rng)
        with torch.no_grad():
            tot1 += count(model, lambda: [model(x, a, int(k), 0.5) for a, k in zip(archs, splits)])
            tot2 += count(model, lambda: forward_paths(model, x, archs, splits, [0.5], shared=True))
    print(f"training step, λ = 2 (forward operator calls, mean of 200 steps): one path at a time {tot1 / 200:.1f}, "
          f"both in one call {tot2 / 200:.1f}")


if __name__ == "__main__":
    main()
