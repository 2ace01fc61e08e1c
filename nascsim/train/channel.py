"""The lossy channel of the paper's system model, and the end-to-end check of a split over it.

The head's output is quantised to q bits per element (eq. 10 counts q * n_h bits), then every
element is lost with probability p; the tail receives the rest. Quantisation is uniform min-max
per sample with 2^q levels (q >= 32: float32 as is); lost elements are zeroed and the kept ones
scaled by 1/(1-p) -- the inverted dropout the network was trained with (the receiver knows which
elements arrived). :func:`confirm_split` runs exported head and tail files
(:mod:`nascsim.train.parts`) through it.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.train.parts import load_part


def check_bits(bits: float) -> float:
    """Bits q per payload element: a whole number in 1..32 (32: float32 as is)."""
    try:
        q = float(bits)
    except (TypeError, ValueError):
        raise ValueError(f"--bits must be a whole number in 1..32, got {bits!r}") from None
    if not math.isfinite(q) or q != int(q) or not 1 <= q <= 32:
        raise ValueError(f"--bits must be a whole number in 1..32, got {bits!r}")
    return q


def check_loss_rates(ps: Sequence[float]) -> list[float]:
    """Loss rates p: at least one, each finite in [0, 1)."""
    out = [float(p) for p in ps]
    if not out:
        raise ValueError("--ps needs at least one loss rate")
    bad = [p for p in out if not (math.isfinite(p) and 0 <= p < 1)]
    if bad:
        raise ValueError(f"--ps: loss rate {bad[0]} is outside [0, 1)")
    return out


def quantise(z: torch.Tensor, bits: float) -> torch.Tensor:
    """Uniform min-max quantisation to ``bits`` bits per element, per sample (float32 for >= 32)."""
    if bits >= 32:
        return z
    levels = 2 ** int(bits) - 1
    flat = z.reshape(z.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    scale = torch.clamp(hi - lo, min=1e-12) / levels
    return (torch.round((flat - lo) / scale) * scale + lo).reshape(z.shape)


def lossy_channel(z: torch.Tensor, bits: float, p: float, generator: torch.Generator) -> torch.Tensor:
    """Payload after quantisation to ``bits`` and loss of each element with probability ``p``."""
    zq = quantise(z, bits)
    if p <= 0:
        return zq
    keep = torch.rand(zq.shape, generator=generator, device=zq.device) >= p
    return zq * keep / (1.0 - p)


def cpu_latency_ms(module: nn.Module, x: torch.Tensor, repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time in ms of ``module(x)`` on this machine's CPU (batch as given)."""
    module = module.to("cpu").eval()
    x = x.to("cpu")
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            module(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def confirm_split(head_file: str | Path, tail_file: str | Path, x_test: np.ndarray, y_test: np.ndarray,
                  ps: Sequence[float] = DEFAULT_LOSS_SET, bits: float = 8, seed: int = 0,
                  batch: int = 1000, latency_repeats: int = 30) -> dict:
    """Accuracy per p of head -> q-bit payload -> loss p -> tail, with the exported modules loaded
    from their files; plus CPU latency (batch 1, median) of head and tail.

    x_test: uint8 (N, 32, 32, 3), y_test (N,). Returns {"rows": [{p, bits, channel_acc}], head_ms,
    tail_ms, payload_elements, latency_device}.
    """
    from nascsim.train.data import normalise, to_device

    head, spec = load_part(head_file)
    tail, spec_t = load_part(tail_file)
    if spec != spec_t:
        raise ValueError(f"{head_file} and {tail_file} come from different exports")
    from nascsim.train.proxy import Proxy, resize_images

    x = normalise(to_device(resize_images(x_test, Proxy.from_dict(spec.get("proxy")).resolution), "cpu"), *spec["stats"])
    y = torch.as_tensor(y_test)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    with torch.no_grad():
        payloads = [head(x[s:s + batch]) for s in range(0, len(y), batch)]
        for p in ps:
            correct = 0
            for i, z in enumerate(payloads):
                out = tail(lossy_channel(z, bits, float(p), gen))
                correct += int((out.argmax(1) == y[i * batch:(i + 1) * batch]).sum())
            rows.append({"p": float(p), "bits": float(bits), "channel_acc": correct / len(y)})
    one = x[:1]
    with torch.no_grad():
        z1 = head(one)
    return {
        "rows": rows,
        "head_ms": cpu_latency_ms(head, one, latency_repeats),
        "tail_ms": cpu_latency_ms(tail, z1, latency_repeats),
        "payload_elements": int(z1[0].numel()),
        "latency_device": f"cpu ({torch.get_num_threads()} threads), batch 1, median of {latency_repeats}",
    }
