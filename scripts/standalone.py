"""Ground truth for a proxy supernet: (arch, split) pairs trained stand-alone at the same proxy
setting, and the supernet's accuracy of the same pairs, in one small parquet.

Pairs: ``--pairs`` architectures spread over FLOPs -- 4,000 uniform random architectures of the
space, sorted by their full-width FLOPs, one taken at each of ``--pairs`` evenly spaced quantiles
(every op type occurs in every one of them, as in the search space) -- each with a uniform split.
Each is re-trained from scratch by :func:`nascsim.train.retrain.retrain` (one path, ``--epochs``
epochs, split dropout ``--dropout`` at its split, the proxy setting of ``--width`` and
``--resolution``) and tested on the CIFAR-10 test split at every loss rate p; the first
``--dropout-study`` pairs are trained a second time with the other dropout (0 <-> 0.5).
``--supernet`` adds the supernet's accuracy of each pair on its whole held-out split at every p
(BatchNorm on batch statistics, as in every supernet evaluation). Runs resume: a pair whose
``retrain.json`` exists is read, not trained again. The parquet is rewritten atomically after
each pair, with the setting and the commands in its metadata.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/standalone.py --data ../shared/data/cifar10-jpg \\
        --cache-dir .data --out runs/standalone --width 0.25 --resolution 16 --epochs 3 \\
        --table docs/data/standalone-w0.25-16px.parquet [--supernet runs/sn/checkpoint.pt]

With ``--shard 0/2`` and ``--shard 1/2`` two processes (one per core) share the runs; a last call
with ``--only-table`` writes the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from nascsim.train.confirm_report import kendall_tau  # Kendall's tau-b


def pick_pairs(space, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(archs (n, L), splits (n,), full-width FLOPs (n,)) spread over FLOPs (module docstring)."""
    from nascsim.hw.flops import flop_tables

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57A1]))
    archs = rng.integers(0, space.n_ops, size=(4000, space.n_layers))
    t = flop_tables(space, 10)
    flops = t.layer[np.arange(space.n_layers), archs].sum(1) + t.stem + t.header + t.pool + t.fc
    order = np.argsort(flops, kind="stable")
    picks = order[np.round((np.arange(n) + 0.5) / n * (len(order) - 1)).astype(int)]
    splits = rng.integers(0, space.n_splits, size=n)
    return archs[picks], splits, flops[picks]


def supernet_accuracy(checkpoint: str, data: str, cache_dir: str | None, archs, splits, ps) -> np.ndarray:
    """(n, len(ps)) accuracy of each pair on the supernet's whole held-out split."""
    import torch

    from nascsim.train.data import holdout_split, load_dataset, normalise, to_device
    from nascsim.train.evaluate import EvalTable, Evaluator, HeldOut, default_max_rows
    from nascsim.train.pretrain import checkpoint_proxy, load_supernet
    from nascsim.train.proxy import proxy_dataset

    model, state = load_supernet(checkpoint, "cpu")
    ds = proxy_dataset(load_dataset(data, cache_dir), checkpoint_proxy(state))
    _, valid_idx = holdout_split(len(ds.y_train), state["valid_images"], state["recipe"]["seed"])
    held = HeldOut(normalise(to_device(ds.x_train[valid_idx], "cpu"), *state["stats"]), torch.as_tensor(ds.y_train[valid_idx]))
    table = EvalTable("sn", ds.name, 0, ps)
    torch.manual_seed(0)
    Evaluator(model, held, table, ps, 1000, default_max_rows(torch.device("cpu"))).lowvar(archs, splits)
    return np.asarray(table.cols["acc"]).reshape(len(splits), len(ps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="folder of the runs (one subfolder per pair and dropout)")
    ap.add_argument("--table", required=True, help="the parquet written (one row per pair and dropout)")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--space", default="fbnet")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--dropout-study", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--supernet", default=None, help="supernet checkpoint: add its accuracy of each pair")
    ap.add_argument("--only-table", action="store_true", help="train nothing; tabulate the finished runs")
    ap.add_argument("--study-only", action="store_true", help="train only the dropout study's runs (a second process)")
    ap.add_argument("--shard", default=None, help="K/N: train only every N-th run from the K-th (one process per core); "
                    "no table (tabulate afterwards with --only-table)")
    ap.add_argument("--random-subnets", type=int, default=0,
                    help="with --supernet: also this many uniform random pairs on the whole held-out split (--random-json)")
    ap.add_argument("--random-json", default=None, help="where the random pairs' accuracies go (json)")
    args = ap.parse_args()
    if args.shard:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
            print(f"error: --shard {args.shard!r}: want K/N with whole numbers 0 <= K < N", file=sys.stderr)
            raise SystemExit(2)

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from nascsim.atomic import atomic_path
    from nascsim.config import DEFAULT_LOSS_SET
    from nascsim.space import get_space
    from nascsim.train.recipe import Recipe
    from nascsim.train.retrain import retrain

    torch.set_num_threads(1)
    space = get_space(args.space)
    ps = list(DEFAULT_LOSS_SET)
    archs, splits, flops = pick_pairs(space, args.pairs, args.seed)
    other = 0.0 if args.dropout > 0 else 0.5
    jobs = [(i, args.dropout) for i in range(args.pairs)] + [(i, other) for i in range(args.dropout_study)]
    rows: list[dict] = []

    def write_table(sn_acc: np.ndarray | None) -> None:
        if not rows:
            return
        cols: dict[str, list] = {k: [r[k] for r in rows] for k in rows[0]}
        if sn_acc is not None:
            for j, p in enumerate(ps):
                cols[f"supernet_acc_p{int(round(p * 10))}"] = [float(sn_acc[r["pair"], j]) for r in rows]
            cols["supernet_acc"] = cols["supernet_acc_p0"]
        else:
            cols["supernet_acc"] = [float("nan")] * len(rows)
        meta = {"setting": {"width": args.width, "resolution": args.resolution}, "space": space.name,
                "epochs": args.epochs, "supernet": args.supernet, "command": " ".join(sys.argv),
                "pair_choice": "4000 uniform archs sorted by full-width FLOPs, one per evenly spaced quantile; uniform split",
                "standalone_eval": "CIFAR-10 test split (10,000 images), eval-mode BatchNorm",
                "supernet_eval": "supernet's held-out split (5,000 training images), BatchNorm on batch statistics"}
        table = pa.table(cols).replace_schema_metadata({"nascsim": json.dumps(meta)})
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.table) as tmp:
            pq.write_table(table, tmp)

    if args.study_only:
        jobs = jobs[args.pairs:]
    if args.shard:
        k, n = (int(v) for v in args.shard.split("/"))
        jobs = jobs[k::n]
    for i, drop in jobs:
        run = Path(args.out) / f"pair{i:02d}-drop{int(round(drop * 100)):02d}"
        done = run / "retrain.json"
        if not done.exists():
            if args.only_table:
                continue
            recipe = Recipe(epochs=args.epochs, lambda_x=1, split_dropout=drop, width=args.width,
                            resolution=args.resolution, seed=args.seed)
            t0 = time.time()
            retrain(args.data, run, archs[i], int(splits[i]), space=space.name, recipe=recipe, ps=ps,
                    cache_dir=args.cache_dir, device="cpu", resume=(run / "checkpoint.pt").exists(), progress=False,
                    latency_repeats=3)
            print(f"pair {i} drop {drop}: {time.time() - t0:.0f} s", flush=True)
        res = json.loads(done.read_text())
        acc = {r["p"]: r["test_acc"] for r in res["rows"]}
        row = {"pair": i, "arch": ",".join(space.ops[o].name for o in archs[i]), "split": int(splits[i]),
               "flops": float(flops[i]), "dropout_train": drop, "epochs": args.epochs, "train_s": res["train_s"],
               **{f"op{li:02d}": int(o) for li, o in enumerate(archs[i])},
               **{f"standalone_acc_p{int(round(p * 10))}": acc[p] for p in ps}}
        row["standalone_acc"] = row["standalone_acc_p0"]
        rows.append(row)
        if not args.shard:
            write_table(None)
    if args.shard:
        return
    sn = supernet_accuracy(args.supernet, args.data, args.cache_dir, archs, splits, ps) if args.supernet else None
    write_table(sn)
    if sn is not None and args.random_subnets:
        from nascsim.train.sampling import uniform_pairs

        r_archs, r_splits = uniform_pairs(space, args.random_subnets, np.random.default_rng(np.random.SeedSequence([args.seed, 0xA11])))
        r_acc = supernet_accuracy(args.supernet, args.data, args.cache_dir, r_archs, r_splits, ps)
        doc = {"supernet": args.supernet, "pairs": args.random_subnets, "images": "whole held-out split (5,000)",
               "ps": ps, "acc_mean": r_acc.mean(0).tolist(), "acc_sd": r_acc.std(0, ddof=1).tolist(),
               "acc_min": r_acc.min(0).tolist(), "acc_max": r_acc.max(0).tolist(), "command": " ".join(sys.argv)}
        print(json.dumps({"random_subnets_p0_mean": doc["acc_mean"][0], "sd": doc["acc_sd"][0]}))
        if args.random_json:
            Path(args.random_json).write_text(json.dumps(doc, indent=1))
    if sn is not None:
        print(summary(rows, sn, ps, args.dropout))


def summary(rows: list[dict], sn: np.ndarray, ps: list[float], dropout: float) -> str:
    """The markdown tables of docs/torch-stage.md: Kendall tau of supernet vs stand-alone accuracy
    and of each vs full-width FLOPs at p = 0, 0.2, 0.5, accuracy ranges and means; then the
    dropout study (mean accuracy at each p of the pairs trained both ways)."""
    main_rows = [r for r in rows if r["dropout_train"] == dropout]
    at = {p: j for j, p in enumerate(ps)}
    flops = np.array([r["flops"] for r in main_rows])
    cols = []
    for p in (0.0, 0.2, 0.5):
        key = f"standalone_acc_p{int(round(p * 10))}"
        sa = np.array([r[key] for r in main_rows])
        sv = sn[[r["pair"] for r in main_rows], at[p]]
        cols.append((kendall_tau(sv, sa), kendall_tau(sa, flops), kendall_tau(sv, flops), sa, sv))
    n = len(main_rows)
    out = ["| | p = 0 | p = 0.2 | p = 0.5 |", "|---|---|---|---|",
           f"| Kendall τ, supernet vs stand-alone ({n} pairs, {n * (n - 1) // 2} pairs of pairs) | "
           + " | ".join(f"{c[0]:.2f}" for c in cols) + " |",
           "| Kendall τ, stand-alone vs FLOPs | " + " | ".join(f"{c[1]:.2f}" for c in cols) + " |",
           "| Kendall τ, supernet vs FLOPs | " + " | ".join(f"{c[2]:.2f}" for c in cols) + " |",
           "| stand-alone accuracy, range | " + " | ".join(f"{100 * c[3].min():.1f}-{100 * c[3].max():.1f}%" for c in cols) + " |",
           "| supernet accuracy, range | " + " | ".join(f"{100 * c[4].min():.1f}-{100 * c[4].max():.1f}%" for c in cols) + " |",
           f"mean at p = 0: stand-alone {100 * cols[0][3].mean():.1f}%, supernet {100 * cols[0][4].mean():.1f}%"]
    other = [r for r in rows if r["dropout_train"] != dropout]
    if other:
        mine = {r["pair"]: r for r in main_rows}
        both = [r for r in other if r["pair"] in mine]
        out += ["", f"| p at test | stand-alone trained with p = {dropout:g} | stand-alone trained with p = "
                f"{both[0]['dropout_train']:g} | supernet |", "|---|---|---|---|"]
        for p in ps:
            key = f"standalone_acc_p{int(round(p * 10))}"
            out.append(f"| {p:g} | {100 * np.mean([mine[r['pair']][key] for r in both]):.1f}% | "
                       f"{100 * np.mean([r[key] for r in both]):.1f}% | {100 * np.mean(sn[[r['pair'] for r in both], at[p]]):.1f}% |")
    return "\n".join(out)

if __name__ == "__main__":
    main()
