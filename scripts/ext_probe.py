"""Probes of the extended-space supernet: ``nascsim supernet train`` with one change to the path
sampler, to the bottleneck ops or to the step (the tool itself has no such options;
docs/torch-stage.md, "The extended space at the CPU proxy", quotes the runs).

    PYTHONPATH=. python scripts/ext_probe.py [CHANGES] -- SUPERNET-TRAIN-OPTIONS

Which paths are trained:

- ``--fixed OPS [--fixed-split K]``: every step trains the one path (22 comma-separated op names);
- ``--keep Q``: each sampled bottleneck op stays with probability Q, else becomes a conv or skip
  op drawn uniformly (Q = 0: no bottleneck op in any trained path; Q = 1: the tool's sampler);
- ``--at-split S``: no bottleneck op anywhere, except in a share S of the pairs whose split k >= 1,
  where layer k (the layer the split follows) gets a bottleneck op drawn uniformly: the payload is
  then the bottleneck's depthwise output, the place the extended space adds them for;
- ``--force L=OP``: layer L (0-based) takes OP in every pair, every other sampled bottleneck op
  becomes a conv or skip op drawn uniformly;
- ``--ramp E [--ramp-start S]``: in epoch e (from 0) each sampled bottleneck op stays with
  probability min(1, (e - S) / E), 0 before epoch S, else becomes a conv or skip op drawn
  uniformly: no bottleneck op at first, the tool's sampler from epoch S + E on.

The monitor's pairs stay uniform over the whole extended space.

What a bottleneck op is while training:

- ``--private``: with entangled sharing, its weights are its own (the plain stand-alone block),
  not slices of the layer's shared conv weights;
- ``--mid-floor F`` / ``--mid-min M``: its middle layer has at least round(F x C_in) / min(M, C_in)
  channels (this changes the op);
- ``--tied``: where the layer keeps its shape, its last 1x1 conv is the transpose of its first;
- ``--anneal E``: where the layer keeps its shape it adds g x its input to its output (not across
  a split inside it), g = max(0, 1 - e / E) in epoch e (from 0): the true op from epoch E on;
  with ``--from-skip`` also where the shape changes, g x the layer's skip op (its 1x1
  projection); ``--zero-bottleneck``: the last BatchNorm scale of those ops starts at 0, so every
  path starts as a path of conv and skip ops. Evaluations (no gradient) always see the true op.

The step:

- ``--clip C``: the gradient norm is clipped at C instead of the recipe's 5;
- ``--recon B``: the loss adds B x the mean squared difference between a bottleneck op's output
  and its input where the two have one shape.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nascsim.train.blocks as blocks
import nascsim.train.entangled as entangled
import nascsim.train.loop as loop
import nascsim.train.pretrain as pretrain
import nascsim.train.sampling as sampling
import nascsim.train.supernet as supernet
from nascsim.cli import main
from nascsim.space import Op, get_space


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        fail(message)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        raise SystemExit(2)
    cut = argv.index("--")
    p = Parser(prog="ext_probe.py")
    p.add_argument("--keep", type=float, default=None)
    p.add_argument("--at-split", type=float, default=None)
    p.add_argument("--fixed", default="")
    p.add_argument("--fixed-split", type=int, default=22)
    p.add_argument("--force", default="")
    p.add_argument("--ramp", type=float, default=0.0)
    p.add_argument("--ramp-start", type=float, default=0.0)
    p.add_argument("--private", action="store_true")
    p.add_argument("--mid-floor", type=float, default=0.0)
    p.add_argument("--mid-min", type=int, default=0)
    p.add_argument("--tied", action="store_true")
    p.add_argument("--anneal", type=float, default=0.0)
    p.add_argument("--from-skip", action="store_true")
    p.add_argument("--zero-bottleneck", action="store_true")
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--recon", type=float, default=0.0)
    args = p.parse_args(argv[:cut])
    names = [op.name for op in get_space("extended").ops]
    for name in ("keep", "at_split"):
        v = getattr(args, name)
        if v is not None and not 0 <= v <= 1:
            fail(f"--{name.replace('_', '-')} takes a share in [0, 1], got {v}")
    for name in ("ramp", "ramp_start", "mid_floor", "mid_min", "anneal", "clip", "recon"):
        v = getattr(args, name)
        if not (np.isfinite(v) and 0 <= v <= 1000):
            fail(f"--{name.replace('_', '-')} must lie in [0, 1000], got {v}")
    if args.fixed and (len(args.fixed.split(",")) != 22 or not set(args.fixed.split(",")) <= set(names)):
        fail(f"--fixed takes 22 comma-separated op names of the extended space, got {args.fixed!r}")
    if not 0 <= args.fixed_split <= 22:
        fail(f"--fixed-split must lie in 0..22, got {args.fixed_split}")
    if args.force:
        layer, _, op = args.force.partition("=")
        if not (layer.isdigit() and int(layer) < 22 and op in names):
            fail(f"--force takes LAYER=OP with LAYER in 0..21 and an op of the extended space, got {args.force!r}")
    return args, argv[cut + 1:]


def use_sampler(draw) -> None:
    """Make ``draw(space, steps, lambda_x, how, rng)`` the sampler of every training entry point."""
    sampling.epoch_paths = draw
    pretrain.epoch_paths = draw  # it imported the name


def without_bottlenecks(space, archs: np.ndarray, rng: np.random.Generator, keep: float | None) -> None:
    """Each bottleneck op in ``archs`` stays with probability ``keep``, else becomes a conv or skip op
    (``keep`` None: none stays, and no draw decides it, as the quoted runs did)."""
    bottleneck = np.array([op.kind == "bottleneck" for op in space.ops])
    swap = bottleneck[archs] if keep is None else bottleneck[archs] & (rng.random(archs.shape) >= keep)
    archs[swap] = rng.choice(np.flatnonzero(~bottleneck), size=int(swap.sum()))


def patch_paths(args) -> None:
    drawn = sampling.epoch_paths
    if args.fixed:
        def fixed(space, steps, lambda_x, how, rng):
            arch = np.array([[o.name for o in space.ops].index(n) for n in args.fixed.split(",")])
            return np.tile(arch, (steps, lambda_x, 1)), np.full((steps, lambda_x), args.fixed_split)

        use_sampler(fixed)
    elif args.keep is not None or args.at_split is not None:
        def kept(space, steps, lambda_x, how, rng):
            archs, splits = drawn(space, steps, lambda_x, how, rng)
            without_bottlenecks(space, archs, rng, args.keep)
            if args.at_split is not None:
                flat, k = archs.reshape(-1, space.n_layers), splits.reshape(-1)
                put = np.flatnonzero((rng.random(k.size) < args.at_split) & (k >= 1))
                bottlenecks = [i for i, op in enumerate(space.ops) if op.kind == "bottleneck"]
                flat[put, k[put] - 1] = rng.choice(bottlenecks, size=put.size)
            return archs, splits

        use_sampler(kept)
    elif args.force:
        layer, _, op = args.force.partition("=")

        def forced(space, steps, lambda_x, how, rng):
            archs, splits = drawn(space, steps, lambda_x, how, rng)
            without_bottlenecks(space, archs, rng, None)
            archs[..., int(layer)] = [o.name for o in space.ops].index(op)
            return archs, splits

        use_sampler(forced)
    elif args.ramp > 0 or args.ramp_start > 0:
        epoch = [0]

        def ramped(space, steps, lambda_x, how, rng):
            archs, splits = drawn(space, steps, lambda_x, how, rng)
            e = epoch[0] - args.ramp_start
            share = 0.0 if e < 0 else 1.0 if e >= args.ramp else e / args.ramp
            epoch[0] += 1
            print(f"ramp: epoch {epoch[0]}, bottleneck share {share:.3f}", file=sys.stderr, flush=True)
            without_bottlenecks(space, archs, rng, share)
            return archs, splits

        use_sampler(ramped)


def keeps_shape(layer) -> bool:
    return layer.stride == 1 and layer.c_in == layer.c_out


class TiedDecoder(nn.Module):
    """A bottleneck op's last 1x1 conv as the transpose of its first (the shared pw1 rows)."""

    def __init__(self, shared, mid: int) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)
        self.mid = mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.shared.pw1[: self.mid, :, 0, 0].t()[:, :, None, None].contiguous())


# A bottleneck op's input, keyed by the id of its head part's output: its tail part (run on that
# very tensor unless a split inside the op put dropout between them) finds it again. Cleared
# around every step, so no id outlives its tensor.
_inputs: dict[int, torch.Tensor] = {}
_recon_terms: list[torch.Tensor] = []
_gate = [0.0]  # g of --anneal in this epoch
RECON = [0.0]  # B of --recon


def _keep_input(mod, inp, out) -> None:
    if torch.is_grad_enabled():
        _inputs[id(out)] = inp[0]


def _tail_hook(mod, inp, out):
    x = _inputs.pop(id(inp[0]), None)
    if x is None:
        return out
    if RECON[0] > 0 and x.shape == out.shape:
        _recon_terms.append(F.mse_loss(out.float(), x.detach().float()))
    if _gate[0] > 0:
        if x.shape == out.shape:
            return out + _gate[0] * x
        skip = getattr(mod, "skip_ref", None)
        if skip is not None:
            return out + _gate[0] * skip[0](x)
    return out


def patch_ops(args) -> None:
    if args.mid_floor > 0 or args.mid_min > 0:
        mid = Op.mid_channels

        def mid_channels(self, c_in):
            floor = max(int(round(args.mid_floor * c_in)), min(args.mid_min, c_in))
            return max(mid(self, c_in), floor) if self.kind == "bottleneck" else mid(self, c_in)

        Op.mid_channels = mid_channels
    build = entangled.build_entangled_layer
    hooked = args.anneal > 0 or args.recon > 0

    def build_layer(layer, ops, bn="private"):
        shared, mods = build(layer, ops, bn)
        skip = mods[[o.kind for o in ops].index("skip")]
        for i, op in enumerate(ops):
            if op.kind != "bottleneck":
                continue
            if args.private:
                mods[i] = blocks.BottleneckBlock(layer, op)
            b = mods[i]
            if args.tied and keeps_shape(layer):
                b.tail_part[0] = TiedDecoder(shared, op.mid_channels(layer.c_in))
            if args.zero_bottleneck and (keeps_shape(layer) or args.from_skip):
                b.zero_last = True
            if args.from_skip and not keeps_shape(layer):
                object.__setattr__(b.tail_part, "skip_ref", [skip])
            if hooked:
                b.head_part.register_forward_hook(_keep_input)
                b.tail_part.register_forward_hook(_tail_hook)
        return shared, mods

    entangled.build_entangled_layer = build_layer
    zero_init = blocks.zero_init_residual

    def zero_init_residual(module):
        zero_init(module)
        for m in module.modules():
            if getattr(m, "zero_last", False):
                nn.init.zeros_(m.tail_part[1].weight)

    supernet.zero_init_residual = zero_init_residual  # it imported the name


def patch_step(args) -> None:
    RECON[0] = args.recon
    if args.clip > 0:
        clip = torch.nn.utils.clip_grad_norm_
        torch.nn.utils.clip_grad_norm_ = lambda params, max_norm, *a, **k: clip(params, args.clip, *a, **k)
    if args.anneal > 0:
        drawn = sampling.epoch_paths
        epoch = [0]

        def annealed(space, steps, lambda_x, how, rng):
            _gate[0] = max(0.0, 1.0 - epoch[0] / args.anneal)
            epoch[0] += 1
            print(f"anneal: epoch {epoch[0]}, gate {_gate[0]:.3f}", file=sys.stderr, flush=True)
            return drawn(space, steps, lambda_x, how, rng)

        use_sampler(annealed)
    plain = loop.path_loss

    def path_loss(*a, **k):
        _inputs.clear()
        _recon_terms.clear()
        try:
            loss = plain(*a, **k)
            return loss + RECON[0] * torch.stack(_recon_terms).mean() if _recon_terms else loss
        finally:
            _inputs.clear()
            _recon_terms.clear()

    loop.path_loss = path_loss


if __name__ == "__main__":
    args, rest = parse(sys.argv[1:])
    patch_paths(args)
    patch_ops(args)
    patch_step(args)
    main(rest)
