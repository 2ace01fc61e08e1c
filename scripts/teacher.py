"""Train a dense CNN teacher (a small ResNet-like net, bf16 autocast) at a proxy resolution on the
supernet's training split (the held-out split excluded) and save its logits (mean over the image
and its mirror) for every CIFAR-10 training image, for ``scripts/supernet_trials.py --teacher``.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/teacher.py --c 32 --bf16 --epochs 10 --out runs/teacher-c32-16px.pt
"""
import sys, time, json, math, argparse, torch, torch.nn as nn, torch.nn.functional as F
from nascsim.train.data import load_dataset, holdout_split, channel_stats, to_device, normalise, augment
from nascsim.train.proxy import resize_images
ap = argparse.ArgumentParser()
ap.add_argument("--res", type=int, default=16); ap.add_argument("--c", type=int, default=32)
ap.add_argument("--epochs", type=int, default=8); ap.add_argument("--bs", type=int, default=256)
ap.add_argument("--lr", type=float, default=0.2); ap.add_argument("--bf16", action="store_true")
ap.add_argument("--out", default="runs/teacher.pt"); ap.add_argument("--time-only", action="store_true")
a = ap.parse_args()
torch.set_num_threads(1); torch.manual_seed(0)
def cbr(ci, co, pool=False):
    m = [nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]
    if pool: m.insert(1, nn.MaxPool2d(2))
    return nn.Sequential(*m)
class Res(nn.Module):
    def __init__(s, c): super().__init__(); s.a = cbr(c, c); s.b = cbr(c, c)
    def forward(s, x): return x + s.b(s.a(x))
c = a.c
net = nn.Sequential(cbr(3, c), cbr(c, 2 * c, True), Res(2 * c), cbr(2 * c, 4 * c, True), cbr(4 * c, 8 * c, True), Res(8 * c),
                    nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * c, 10, bias=False))
net = net.to(memory_format=torch.channels_last)
ds = load_dataset("../shared/data/cifar10-jpg", ".data")
x = resize_images(ds.x_train, a.res)
tr, va = holdout_split(len(ds.y_train), 5000, 0)
stats = channel_stats(x[tr])
images = to_device(x, "cpu"); labels = torch.as_tensor(ds.y_train).long()
xt = resize_images(ds.x_test, a.res); xt = normalise(to_device(xt, "cpu"), *stats); yt = torch.as_tensor(ds.y_test).long()
decay, no_decay = [p for p in net.parameters() if p.ndim > 1], [p for p in net.parameters() if p.ndim <= 1]
opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}], lr=a.lr, momentum=0.9, nesterov=True)
steps = len(tr) // a.bs; total = steps * a.epochs; g = torch.Generator().manual_seed(0)
def lr_at(k):
    w = steps // 2
    return a.lr * (k + 1) / w if k < w else a.lr * 0.5 * (1 + math.cos(math.pi * (k - w) / (total - w)))
def predict(xn):
    net.eval(); out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        for i in range(0, len(xn), 1000):
            b = xn[i:i + 1000].contiguous(memory_format=torch.channels_last)
            out.append(((net(b).float() + net(b.flip(3)).float()) / 2))
    net.train(); return torch.cat(out)
t0 = time.time(); k = 0
for ep in range(a.epochs):
    order = torch.as_tensor(tr)[torch.randperm(len(tr), generator=g)]
    for s in range(steps):
        idx = order[s * a.bs:(s + 1) * a.bs]
        xb = augment(normalise(images[idx], *stats), g, pad=max(1, a.res // 8)).contiguous(memory_format=torch.channels_last)
        for gr in opt.param_groups: gr["lr"] = lr_at(k)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(net(xb).float(), labels[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); k += 1
        if a.time_only and s == 20:
            print(f"{20 * a.bs / (time.time() - t0):.0f} img/s"); sys.exit()
    acc = (predict(xt).argmax(1) == yt).float().mean().item()
    print(json.dumps({"epoch": ep + 1, "loss": round(loss.item(), 3), "test_acc": round(acc, 4), "wall": round(time.time() - t0, 1)}), flush=True)
logits = predict(normalise(images, *stats))
va_acc = (logits[torch.as_tensor(va)].argmax(1) == labels[torch.as_tensor(va)]).float().mean().item()
torch.save({"logits": logits.half(), "test_acc": acc, "heldout_acc": va_acc, "args": vars(a)}, a.out)
print(json.dumps({"final": True, "test_acc": acc, "heldout_acc": va_acc, "wall": round(time.time() - t0, 1)}))
