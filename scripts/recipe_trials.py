"""Short supernet training trials on a CPU, to compare recipes against each other.

Each trial trains a fresh supernet (split dropout 0.5 unless --dropout) on the first
``--images`` images of the 45,000-image training split for ``--epochs`` epochs, then reports the
held-out accuracy at p = 0 of ``--subnets`` fixed uniform subnets (the same subnets for every
trial: seed 12345) on 1,000 held-out images, BatchNorm on batch statistics -- the mean
sampled-subnet accuracy the campaign reports. One JSON line per trial on stdout.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/recipe_trials.py --data DIR --cache-dir C \\
        --images 5000 --epochs 4 --trial plain --trial campaign

A trial is a name from TRIALS or ``name:key=value,key=value`` over Recipe fields.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

TRIALS = {
    # the recipe before the campaign (CLI defaults then)
    "plain": dict(lr=0.05, weight_decay=4e-5, header_lr_scale=1.0, wd_scope="all", sampling="uniform", init="fan_out"),
    # the campaign's recipe (nascsim.train.loop.Recipe defaults)
    "campaign": dict(),
}


def parse_trial(text: str) -> tuple[str, dict]:
    if ":" not in text:
        return text, dict(TRIALS[text])
    name, kv = text.split(":", 1)
    base = dict(TRIALS.get(name.split("+")[0], {}))
    for item in kv.split(","):
        k, v = item.split("=")
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        base[k] = v
    return text, base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--subnets", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--trial", action="append", required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nascsim.space import get_space
    from nascsim.train.data import channel_stats, holdout_split, load_dataset, normalise, to_device
    from nascsim.train.loop import EpochData, Precision, Recipe, make_optimizer, run_epoch
    from nascsim.train.pretrain import subnet_spread
    from nascsim.train.sampling import epoch_paths
    from nascsim.train.supernet import SuperNet

    ds = load_dataset(args.data, args.cache_dir)
    train_idx, valid_idx = holdout_split(len(ds.y_train), 5000, 0)
    train_idx = train_idx[: args.images]
    stats = channel_stats(ds.x_train[train_idx])
    images = to_device(ds.x_train, "cpu")
    labels = torch.as_tensor(ds.y_train)
    x_mon = normalise(images[torch.as_tensor(valid_idx[:1000])], *stats)
    y_mon = labels[torch.as_tensor(valid_idx[:1000])]
    data = EpochData.of(images, labels, train_idx, stats)
    sp = get_space("fbnet")
    precision = Precision(amp=False, channels_last=args.channels_last)
    for text in args.trial:
        name, kw = parse_trial(text)
        recipe = Recipe(**{"epochs": args.epochs, "batch_size": args.batch_size, "split_dropout": args.dropout, **kw})
        torch.manual_seed(recipe.seed)
        model = precision.prepare(SuperNet(sp, ds.n_classes, zero_residual=recipe.zero_residual, init=recipe.init))
        opt = make_optimizer(model, recipe)
        t0 = time.perf_counter()
        log = []
        for e in range(recipe.epochs):
            entry = run_epoch(model, opt, data, recipe, e, lambda rng, s: epoch_paths(sp, s, recipe.lambda_x, recipe.sampling, rng),
                              precision)
            log.append(round(entry["loss"], 4))
        train_s = time.perf_counter() - t0
        spread = subnet_spread(model, x_mon, y_mon, args.subnets, 12345, precision)
        print(json.dumps({"trial": name, "images": args.images, "epochs": args.epochs, "batch": args.batch_size,
                          "acc_mean": round(spread["subnet_acc_mean"], 4), "acc_sd": round(spread["subnet_acc_sd"], 4),
                          "acc_min": round(spread["subnet_acc_min"], 4), "acc_max": round(spread["subnet_acc_max"], 4),
                          "loss": log, "train_s": round(train_s, 1),
                          "images_per_s": round(args.images // args.batch_size * args.batch_size * args.epochs / train_s, 1),
                          "recipe": {k: v for k, v in recipe.to_dict().items() if k in kw}}), flush=True)


if __name__ == "__main__":
    main()
