"""Several (arch, split) paths of the supernet in one pass, each at several loss rates p.

The single-path forward (:meth:`nascsim.train.supernet.SuperNet.forward`) computes, per pair,

    y = tail(dropout_p(head(x; a, k)); a, k)

:func:`forward_paths` computes the same for U pairs (a_u, k_u) and every p of a list, sharing
work the way a prefix tree would:

- rows are kept in *nodes* of ``n`` rows each (one minibatch); a node stands for every (pair, p)
  whose computation so far is identical (same images, same ops, no dropout yet). Pairs that see
  the same images start in one node, and stay together while they choose the same ops;
- at layer l the nodes are grouped by the op their pairs choose there; on a GPU each op runs once
  on the rows of all its nodes stacked (``torch.cat``; from 3 nodes on, fewer run one by one), with
  BatchNorm statistics per node (:func:`nascsim.train.blocks.unit_rows`), so every node sees the
  statistics it would see alone;
- at a pair's split point (after the stem for k = 0, after the head part of layer k otherwise --
  inside a bottleneck block of the extended space) the pair leaves its node and becomes one node
  per p, each with its own dropout mask: the head runs once for all p, the tail once per p, and
  the tails of all pairs and p that choose the same op share one call.

On a GPU a call therefore makes at most ``n_ops`` stacked module calls per layer whatever the
number of pairs and loss rates, instead of one per pair and p; on a CPU each node runs alone
(what costs there is moving rows, not calls) and only the shared prefixes save work. The result
equals the single-path forward per (pair, p) up to floating-point summation order; dropout masks
are drawn in a different order, so individual masks (not their distribution) differ from
single-path calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nascsim.train.blocks import unit_rows
from nascsim.train.supernet import split_dropout


@dataclass
class _Node:
    """``z``: (n, ...) rows shared by ``leaves``: (pair, p index), p index -1 before the split."""

    z: torch.Tensor
    leaves: list[tuple[int, int]]


def _stack(nodes: list[_Node]) -> torch.Tensor:
    return nodes[0].z if len(nodes) == 1 else torch.cat([nd.z for nd in nodes])


def _unstack(y: torch.Tensor, nodes: list[_Node], n: int) -> list[_Node]:
    if len(nodes) == 1:
        return [_Node(y, nodes[0].leaves)]
    return [_Node(y.narrow(0, i * n, n), nd.leaves) for i, nd in enumerate(nodes)]


def _expand(nodes: list[_Node], splits: np.ndarray, at: int, ps: Sequence[float]) -> list[_Node]:
    """Pairs whose split is ``at`` leave their node: one node per p with dropout p on its rows."""
    out: list[_Node] = []
    for nd in nodes:
        stay = [lf for lf in nd.leaves if lf[1] >= 0 or splits[lf[0]] != at]
        if len(stay) == len(nd.leaves):
            out.append(nd)
            continue
        if stay:
            out.append(_Node(nd.z, stay))
        for u, _ in (lf for lf in nd.leaves if lf[1] < 0 and splits[lf[0]] == at):
            out.extend(_Node(split_dropout(nd.z, p), [(u, j)]) for j, p in enumerate(ps))
    return out


STACK_FROM = 3  # nodes: fewer run one by one (a stacked call's cat and per-node BatchNorm cost more ops)
STACK_ON = ("cuda",)  # device types where stacking pays: on a CPU one call per node was faster at
# every batch measured (64-1000 images; the stacked rows' cat and per-unit BatchNorm only move memory)


def _run(module: nn.Module, nodes: list[_Node], n: int) -> list[_Node]:
    """``module`` on every node: one call on the stacked rows from :data:`STACK_FROM` nodes on a
    device of :data:`STACK_ON` (a GPU pays per call; a per-node BatchNorm costs 6 operators
    instead of 1, so stacking pays from 3 nodes), else one call per node."""
    if len(nodes) < STACK_FROM or nodes[0].z.device.type not in STACK_ON:
        return [_Node(module(nd.z), nd.leaves) for nd in nodes]
    return _unstack(module(_stack(nodes)), nodes, n)


def forward_paths(
    model: nn.Module,
    x: torch.Tensor,
    archs: np.ndarray,
    splits: np.ndarray,
    ps: Sequence[float],
    shared: bool,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Logits of U pairs at every p of ``ps`` (module docstring).

    model: a :class:`nascsim.train.supernet.SuperNet`. x: (n, 3, H, W) images seen by every pair
    (``shared``), or (U * n, 3, H, W) with pair u's own images in rows u*n .. u*n+n-1. archs:
    (U, L) op indices, splits: (U,). Returns (logits of shape (U * len(ps), n, classes), leaves),
    where ``leaves[i] = (u, j)`` names the pair and the p index of block i. BatchNorm uses each
    node's batch statistics when the model is in training mode (training, or
    :class:`nascsim.train.loop.BatchStatistics`).
    """
    archs = np.asarray(archs, dtype=np.int64)
    splits = np.asarray(splits, dtype=np.int64)
    n_pairs = len(splits)
    if archs.shape != (n_pairs, model.space.n_layers):
        raise ValueError(f"archs has shape {archs.shape}; expected ({n_pairs}, {model.space.n_layers})")
    if n_pairs == 0 or not len(ps):
        raise ValueError("forward_paths needs at least one pair and one loss rate")
    if splits.min() < 0 or splits.max() >= model.space.n_splits:
        raise ValueError(f"split points must lie in 0..{model.space.n_splits - 1}, got {splits.min()}..{splits.max()}")
    if archs.min() < 0 or archs.max() >= model.space.n_ops:
        raise ValueError(f"op indices must lie in 0..{model.space.n_ops - 1}")
    n = x.shape[0] if shared else x.shape[0] // n_pairs
    if not shared and n * n_pairs != x.shape[0]:
        raise ValueError(f"{x.shape[0]} rows are not {n_pairs} pairs' whole batches")
    with unit_rows(n):
        if shared:
            nodes = [_Node(model.stem(x), [(u, -1) for u in range(n_pairs)])]
        else:
            stem = model.stem(x)
            nodes = [_Node(stem.narrow(0, u * n, n), [(u, -1)]) for u in range(n_pairs)]
        nodes = _expand(nodes, splits, 0, ps)
        for li, layer_ops in enumerate(model.layers):
            groups: dict[int, list[_Node]] = {}
            for nd in nodes:
                by_op: dict[int, list[tuple[int, int]]] = {}
                for lf in nd.leaves:
                    by_op.setdefault(int(archs[lf[0], li]), []).append(lf)
                for o, leaves in by_op.items():
                    groups.setdefault(o, []).append(_Node(nd.z, leaves))
            nodes = []
            for o in sorted(groups):
                head_part, tail_part = layer_ops[o].parts()
                out = _expand(_run(head_part, groups[o], n), splits, li + 1, ps)
                nodes.extend(out if tail_part is None else _run(tail_part, out, n))
        top = nn.Sequential(model.header, model.pool, model.classifier)
        out = _run(top, nodes, n)
        logits = _stack(out)
    leaves = [nd.leaves[0] for nd in out]
    return logits.view(len(out), n, -1), leaves


def loss_and_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    archs: np.ndarray,
    splits: np.ndarray,
    ps: Sequence[float],
    shared: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy of every pair at every p on its images: two (U, len(ps))
    float32 tensors on the model's device (no host synchronisation). ``y`` holds the labels of
    ``x``'s rows. Call inside :class:`nascsim.train.loop.BatchStatistics` (or ``no_grad``)."""
    import torch.nn.functional as F

    logits, leaves = forward_paths(model, x, archs, splits, ps, shared)
    blocks, n, classes = logits.shape
    u_idx = torch.as_tensor([lf[0] for lf in leaves], device=logits.device)
    j_idx = torch.as_tensor([lf[1] for lf in leaves], device=logits.device)
    labels = y.view(1, n).expand(blocks, n) if shared else y.view(-1, n)[u_idx]
    flat = logits.reshape(-1, classes).float()
    ce = F.cross_entropy(flat, labels.reshape(-1), reduction="none").view(blocks, n).mean(1)
    acc = (flat.argmax(1) == labels.reshape(-1)).view(blocks, n).float().mean(1)
    loss_out = torch.empty(len(splits), len(ps), device=logits.device)
    acc_out = torch.empty_like(loss_out)
    loss_out[u_idx, j_idx] = ce
    acc_out[u_idx, j_idx] = acc
    return loss_out, acc_out
