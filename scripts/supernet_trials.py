"""Short supernet (or stand-alone child) training trials at a proxy setting, for ablations: one
change at a time against the same fixed 16 random subnets (seed 12345) on 1,000 held-out images
(p = 0, BatchNorm on batch statistics). One JSON line per epoch and a final line with the log;
docs/data/supernet-trials.jsonl holds the lines behind the table in docs/torch-stage.md.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/supernet_trials.py --name s_all --epochs 1 \
        --images 20000 --set split_dropout=0 --set sharing=entangled-bn

``--ops 2,6`` restricts every layer to those op indices, ``--child ARCH`` trains one architecture
alone, ``--set key=value`` sets a Recipe field. ``--teacher FILE`` (logits written by
scripts/teacher.py) distils from that network: loss (1 - alpha) CE + alpha T^2 KL(teacher_T ||
student_T) (Hinton et al. 2015), ``--alpha``, ``--temp``. Reads CIFAR-10 from ../shared/data/cifar10-jpg
(decoded-image cache in .data); run from the repository root.
"""
import argparse, json, sys, time
import numpy as np, torch
from nascsim.space import get_space
from nascsim.train.data import load_dataset, holdout_split, channel_stats, to_device, normalise
from nascsim.train.loop import Recipe, train_epochs, BatchStatistics, Precision, epoch_seed
from nascsim.train.proxy import Proxy, resize_images
from nascsim.train.supernet import SuperNet, ChildNet
from nascsim.train.paths import loss_and_accuracy

ap = argparse.ArgumentParser()
ap.add_argument("--name", required=True)
ap.add_argument("--width", type=float, default=0.25)
ap.add_argument("--res", type=int, default=16)
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--images", type=int, default=45000)
ap.add_argument("--ops", default=None, help="comma list of op indices allowed")
ap.add_argument("--child", default=None, help="arch for a ChildNet (comma op indices) ")
ap.add_argument("--split", type=int, default=None)
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--subnets", type=int, default=16)
ap.add_argument("--teacher", default=None, help="logits of a teacher (scripts/teacher.py)")
ap.add_argument("--alpha", type=float, default=0.7)
ap.add_argument("--temp", type=float, default=4.0)
ap.add_argument("--eval-images", type=int, default=1000)
args = ap.parse_args()
torch.set_num_threads(1)
from pathlib import Path
Path("runs/trials").mkdir(parents=True, exist_ok=True)
kw = {}
for item in args.set:
    k, v = item.split("=")
    for cast in (int, float):
        try: v = cast(v); break
        except ValueError: pass
    if v in ("True", "False"): v = v == "True"
    kw[k] = v
recipe = Recipe(epochs=args.epochs, **kw)
sp = get_space("fbnet")
proxy = Proxy(args.width, args.res)
ds = load_dataset("../shared/data/cifar10-jpg", ".data")
x = resize_images(ds.x_train, args.res)
tr, va = holdout_split(len(ds.y_train), 5000, 0)
tr = tr[: args.images]
stats = channel_stats(x[tr])
images = to_device(x, "cpu"); labels = torch.as_tensor(ds.y_train)
xv = normalise(images[torch.as_tensor(va[:args.eval_images])], *stats); yv = labels[torch.as_tensor(va[:args.eval_images])].clone()

if args.teacher:
    import torch.nn.functional as F
    import nascsim.train.loop as L
    T = torch.load(args.teacher)["logits"].float()
    true = labels.clone()
    labels = torch.arange(len(true))
    def kd_path_loss(model, xb, idx, archs, splits, recipe):
        from nascsim.train.paths import forward_paths
        logits, _ = forward_paths(model, xb, archs, splits, [recipe.split_dropout], shared=True)
        logits = logits.float(); lam = logits.shape[0]
        y = true[idx]; t = T[idx]
        ce = F.cross_entropy(logits.reshape(-1, 10), y.repeat(lam), label_smoothing=recipe.label_smoothing)
        tau = args.temp
        pt = F.softmax(t / tau, -1).repeat(lam, 1)
        kl = F.kl_div(F.log_softmax(logits.reshape(-1, 10) / tau, -1), pt, reduction="batchmean") * tau * tau
        return (1 - args.alpha) * ce + args.alpha * kl
    L.path_loss = kd_path_loss
torch.manual_seed(0)
ops = np.array([int(o) for o in args.ops.split(",")]) if args.ops else np.arange(sp.n_ops)
if args.child:
    arch = [int(a) for a in args.child.split(",")]
    model = ChildNet(sp, arch, 10, zero_residual=recipe.zero_residual, init=recipe.init, proxy=proxy)
else:
    model = SuperNet(sp, 10, zero_residual=recipe.zero_residual, init=recipe.init, proxy=proxy, sharing=recipe.sharing)
prec = Precision(channels_last=True)
rng_eval = np.random.default_rng(12345)
ev_archs = ops[rng_eval.integers(0, len(ops), size=(args.subnets, 22))]
ev_splits = rng_eval.integers(0, 23, size=args.subnets)
if args.child:
    ev_archs = np.array([arch]); ev_splits = np.array([args.split or 0])

def sample(rng, steps):
    n = steps * recipe.lambda_x
    if args.child:
        a = np.tile(np.array(arch), (n, 1)); k = np.full(n, args.split or 0)
    elif args.ops is None:
        from nascsim.train.sampling import epoch_paths
        return epoch_paths(sp, steps, recipe.lambda_x, recipe.sampling, rng)
    else:
        if recipe.sampling == "balanced" and len(ops) > 1:
            idx = np.stack([rng.permuted(np.tile(np.arange(len(ops)), (-(-n // len(ops)), 1)), axis=1).reshape(-1)[:n] for _ in range(22)], 1)
            a = ops[idx]
        else:
            a = ops[rng.integers(0, len(ops), size=(n, 22))]
        k = rng.integers(0, 23, size=n) if args.split is None else np.full(n, args.split)
    return a.reshape(steps, recipe.lambda_x, 22), k.reshape(steps, recipe.lambda_x)

t0 = time.time()
def on_epoch(m, e):
    with BatchStatistics(m):
        if args.child:
            acc = (m(prec.batch(xv), None, int(ev_splits[0]), 0.0).argmax(1) == yv).double().mean().reshape(1, 1)
        else:
            _, acc = loss_and_accuracy(m, prec.batch(xv), yv, ev_archs, ev_splits, [0.0])
    acc = acc[:, 0].double().numpy()
    rec = {"name": args.name, "epoch": e + 1, "acc_mean": round(float(acc.mean()), 4), "acc_sd": round(float(acc.std()), 4),
           "acc_min": round(float(acc.min()), 4), "acc_max": round(float(acc.max()), 4), "wall": round(time.time() - t0, 1)}
    print(json.dumps(rec), flush=True)
    return rec
last = train_epochs(model, images, labels, tr, recipe, sample, f"runs/trials/{args.name}.pt", stats, {}, on_epoch=on_epoch,
                    progress=False, precision=prec)
print(json.dumps({"name": args.name, "final": True, "log": [{k: v for k, v in e.items()} for e in last["log"]], "args": vars(args)}), flush=True)
