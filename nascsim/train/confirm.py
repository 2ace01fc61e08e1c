"""Confirmation of search results: ``confirm_results`` re-trains the top candidates of a search
result (JSON) or a sweep result (parquet with columns ``arch``, ``split``, ``accuracy``) and writes
predicted vs measured accuracy (each candidate through :func:`nascsim.train.retrain.retrain`, whose
split is checked end to end over a lossy channel, :mod:`nascsim.train.channel`).
"""

from __future__ import annotations

from pathlib import Path

from nascsim.space import arch_names, get_space, parse_arch
from nascsim.train.channel import check_bits, check_loss_rates
from nascsim.train.retrain import retrain


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
