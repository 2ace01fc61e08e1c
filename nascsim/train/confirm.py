"""End-to-end confirmation of a split over a lossy channel, and confirmation of search results.

The channel of the paper's system model: the head's output is quantised to q bits per element
(eq. 10 counts q * n_h bits), then every element is lost with probability p; the tail receives the
rest. Quantisation is uniform min-max per sample with 2^q levels (q >= 32: float32 as is); lost
elements are zeroed and the kept ones scaled by 1/(1-p) -- the inverted dropout the network was
trained with (the receiver knows which elements arrived).

``confirm_results`` re-trains the top candidates of a search result (JSON) or a sweep result
(parquet with columns ``arch``, ``split``, ``accuracy``) and writes predicted vs measured accuracy.
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
from nascsim.space import arch_names, get_space, parse_arch


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
    from nascsim.train.retrain import load_part

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


def read_candidates(path: str | Path, space: str, top: int) -> list[dict]:
    """Top ``top`` distinct (arch, split) of a search JSON or sweep parquet by predicted accuracy.

    JSON: an object or a list of objects (or {"results": [...]}) with ``arch`` (op names list or
    comma string), ``split`` and ``accuracy``. Parquet: columns ``arch``, ``split``, ``accuracy``
    (optionally ``loss``: the loss rate the accuracy was predicted at). Each candidate:
    {arch (int64 array), split, predicted, p}.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no search or sweep result at {path}")
    sp = get_space(space)
    if path.suffix == ".parquet" or path.is_dir():
        from nascsim.sweep.store import read_runs

        df = read_runs(path)  # a sweep folder (damaged chunks skipped) or one parquet file
        missing = {"arch", "split", "accuracy"} - set(df.columns)
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(sorted(missing))}; expected arch, split, accuracy")
        records = df.to_dicts()
    else:
        from nascsim.atomic import read_regular_bytes
        from nascsim.safe_load import loads_json

        blob = loads_json(read_regular_bytes(path, "result file"), str(path))
        if isinstance(blob, dict) and "results" in blob:
            blob = blob["results"]
        records = blob if isinstance(blob, list) else [blob]
    cands, seen = [], set()
    for i, r in enumerate(records):
        c = _candidate(r, sp, f"{path}: record {i}")
        if c is None:
            continue
        key = (tuple(c["arch"].tolist()), c["split"])
        if key in seen:
            continue
        seen.add(key)
        cands.append(c)
    cands.sort(key=lambda c: -c["predicted"])
    if not cands:
        raise ValueError(f"{path} holds no candidate with an accuracy")
    return cands[:top]


def _candidate(r, sp, where: str) -> dict | None:
    """One record's candidate {arch, split, predicted, p} (None without an accuracy), every field
    checked: ``ValueError`` naming the record and the bad value."""
    from nascsim.safe_load import need_float, need_int, need_list, need_str, short

    if not isinstance(r, dict) or not {"arch", "split", "accuracy"} <= set(r):
        raise ValueError(f"{where}: every record needs arch, split and accuracy; got {short(r, 120)}")
    if r["accuracy"] is None:
        return None
    arch = r["arch"]
    if not isinstance(arch, str):
        arch = [x if isinstance(x, str) else need_int(x, f"{where}: arch item", 0, sp.n_ops - 1)
                for x in need_list(arch, f"{where}: arch", sp.n_layers)]
    else:
        need_str(arch, f"{where}: arch", 4096)
    p = r.get("loss", r.get("p"))
    return {"arch": parse_arch(arch, sp), "split": need_int(r["split"], f"{where}: split", 0, sp.n_layers),
            "predicted": need_float(r["accuracy"], f"{where}: accuracy", 0.0, 1.0),
            "p": None if p is None else need_float(p, f"{where}: loss rate", 0.0, 1.0)}


def confirm_results(results: str | Path, data: str | Path, out: str | Path, space: str = "fbnet", top: int = 3,
                    retrain_kw: dict | None = None) -> list[dict]:
    """Re-train the top candidates and write predicted vs measured accuracy (parquet ``out``;
    per-candidate folders beside it). One row per (candidate, p)."""
    from nascsim.train.retrain import retrain

    kw = dict(retrain_kw or {})
    if "ps" in kw:
        kw["ps"] = check_loss_rates(kw["ps"])
    if "bits" in kw:
        kw["bits"] = check_bits(kw["bits"])
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    from nascsim.atomic import check_output_target

    check_output_target(out, "--out")
    out = Path(out)
    rows = []
    for i, c in enumerate(read_candidates(results, space, top)):
        res = retrain(data, out.parent / f"{out.stem}-cand{i}", c["arch"], c["split"], space=space, **kw)
        for r in res["rows"]:
            match = c["p"] is None or abs(r["p"] - c["p"]) < 1e-9
            rows.append({
                "candidate": i, "arch": ",".join(arch_names(c["arch"], get_space(space))), "split": c["split"],
                "p": r["p"], "predicted_p": c["p"], "predicted_acc": c["predicted"] if match else None,
                "measured_acc": r["test_acc"], "channel_acc": r["channel_acc"], "bits": r["bits"],
                "head_ms": res["head_ms"], "tail_ms": res["tail_ms"], "epochs": res["epochs"],
            })
    import polars as pl

    from nascsim.atomic import atomic_path

    with atomic_path(out) as tmp:
        pl.DataFrame(rows, infer_schema_length=None).write_parquet(tmp)
    return rows
