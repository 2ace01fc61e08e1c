"""``nascsim supernet campaign``: the accuracy surrogate's whole dataset from one timed command.

Within ``budget_s`` seconds of wall time, from start to the last byte written:

1. decode the dataset (once; cached as uint8 arrays);
2. start one *lane* per supernet -- split dropout 0.5 (NASC, HWNAS w/ dropout) and 0 (HWNAS) --
   each holding the data on the device; on CUDA the lanes are two processes sharing the GPU (the
   nets are launch-bound, so two processes fill each other's idle time);
3. calibrate: each lane times a few training steps and evaluation calls of a throw-away supernet;
   on CUDA lane 0 first times training alone, then both together, and the lanes run concurrently
   only when that is faster in sum (else one after the other);
4. plan (:mod:`nascsim.train.plan`) and print the plan: epochs and pair counts per lane;
5. each lane pre-trains its supernet (Algorithm 1, lines 2-4: λ_x = 2 (arch, split) pairs per
   minibatch, dropout p at the split; the recipe of :class:`nascsim.train.loop.Recipe`) and logs
   per epoch the training loss and the held-out accuracy of sampled subnets;
6. then evaluates it (:class:`nascsim.train.evaluate.Evaluator`): the minibatch-noise set, the
   low-noise set and the main pairs, rewriting its parquet atomically every ``flush_s`` seconds and
   after each set, so that a run cut off at any moment leaves valid files.

Output (at most 3 files): ``<supernet id>.parquet`` per lane (rows as
:mod:`nascsim.train.evaluate` describes; schema metadata ``nascsim_supernet``: recipe, per-epoch
log, device, torch version, wall times per part, git commit, plan) and ``campaign.json``, the run
log (settings, calibration, plans, per-lane progress), rewritten atomically as the run goes.

Given its plan a lane is deterministic on the CPU (seeded sampling, augmentation, dropout); the
plan itself depends on measured speed. Times are wall-clock (``time.time``) so that deadlines mean
the same in every process.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from nascsim.train.lane import Lane
from nascsim.train.plan import LanePlan, Speeds, describe, plan_lane
from nascsim.train.settings import RUN_LOG, CampaignSettings, check_settings, lane_name

RESERVE_S = 4.0  # kept free at the end: last writes, process exits
RESERVE_SHARE = 0.02


# ------------------------------------------------------------------------------------------------
# the run log
# ------------------------------------------------------------------------------------------------

class RunLog:
    """``campaign.json``: rewritten atomically after every event."""

    def __init__(self, path: Path, doc: dict) -> None:
        self.path, self.doc = path, doc

    def write(self) -> None:
        from nascsim.atomic import atomic_write_bytes

        self.doc["updated_s"] = round(time.time() - self.doc["t0"], 3)
        atomic_write_bytes(json.dumps(self.doc, indent=1, default=str).encode(), self.path)

    def event(self, msg: tuple) -> None:
        kind, lane = msg[0], msg[1]
        entry = self.doc["lanes"][lane]
        if kind == "epoch":
            entry["epochs_log"].append(msg[2])
        elif kind == "part":
            entry["parts"][msg[2]] = msg[3]
        elif kind == "done":
            entry.update(msg[2])
            entry["status"] = "done"
        elif kind == "error":
            entry["status"] = "failed"
            entry["error"] = msg[2]
        self.write()


def _plans(settings: CampaignSettings, calib: list[dict], seconds_each: float, n_train: int) -> list[LanePlan]:
    out = []
    for c in calib:
        speeds = Speeds(train_image_s=c["train_image_s"], monitor_s=c["monitor_s"], main_pair_s=c["main_pair_s"],
                        lowvar_pair_s=c["lowvar_pair_s"], noise_eval_s=c["noise_eval_s"])
        block = max(2, min(100, settings.main_pairs // 20))
        plan = plan_lane(seconds_each, speeds, settings.targets(n_train, block))
        if settings.epochs is not None and (plan.epochs != settings.epochs or not plan.targets_met):
            from nascsim.train.plan import BudgetTooSmall

            raise BudgetTooSmall(f"--epochs {settings.epochs} with the target pair counts does not fit the budget at the "
                                 f"measured speed (the plan allows {plan.epochs} epochs"
                                 f"{'' if plan.targets_met else ' and smaller sets'}); raise --budget-s")
        out.append(plan)
    return out


def _reserve(budget_s: float) -> float:
    return RESERVE_S + RESERVE_SHARE * budget_s


# ------------------------------------------------------------------------------------------------
# in one process (CPU; or --workers 1)
# ------------------------------------------------------------------------------------------------

def _run_inline(settings: CampaignSettings, t0: float, deadline: float, ds, log: RunLog) -> None:
    lanes = [Lane(settings, i, t0, ds) for i in range(len(settings.dropouts))]
    lane0 = lanes[0]
    lane0.say("calibrating")
    c = {"train_image_s": lane0.calibrate_train(settings.calibrate_s), **lane0.calibrate_eval(settings.calibrate_s)}
    calib = [dict(c) for _ in lanes]
    log.doc["calibration"] = {lane_name(p): dict(c, mode="measured in lane 0, one process") for p in settings.dropouts}
    log.doc["mode"] = "sequential (one process)"
    remaining = deadline - time.time() - _reserve(settings.budget_s)
    plans = _plans(settings, calib, remaining / len(lanes), len(lane0.data.train_idx))
    _announce(plans, [ln.name for ln in lanes], log, remaining, "sequential (one process)")
    start = time.time()
    for i, (lane, plan) in enumerate(zip(lanes, plans)):
        lane_deadline = start + (i + 1) * remaining / len(lanes)
        log.doc["lanes"][i]["status"] = "running"
        try:
            summary = lane.run(plan, lane_deadline, log.event)
        except Exception as exc:  # noqa: BLE001 -- recorded, then re-raised after the log is written
            log.event(("error", i, _one_line(exc)))
            raise
        log.event(("done", i, summary))


def _announce(plans: list[LanePlan], names: list[str], log: RunLog, remaining: float, mode: str) -> None:
    log.doc["plans"] = {n: p.to_dict() for n, p in zip(names, plans)}
    log.doc["planned_at_s"] = round(time.time() - log.doc["t0"], 3)
    log.write()
    print(f"plan ({mode}; {remaining:.0f} s left for the lanes):", flush=True)
    for n, p in zip(names, plans):
        print("  " + describe(p, n), flush=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"


# ------------------------------------------------------------------------------------------------
# two processes sharing one GPU
# ------------------------------------------------------------------------------------------------

def _worker(settings_d: dict, index: int, t0: float, events, commands, barrier, solo_first: bool,
            parent_pid: int | None = None) -> None:
    """A lane in its own process: calibrate (lane 0 alone first, then both lanes together), wait
    for the plan, run. Every outcome goes to ``events`` as a tuple. The lane ends with the
    campaign that started it (:func:`nascsim._children.watch_parent`)."""
    if parent_pid is not None:
        from nascsim._children import watch_parent

        watch_parent(parent_pid)
    try:
        import torch

        settings = CampaignSettings.from_dict(settings_d)
        threads = settings.threads or max(1, (os.cpu_count() or 2) // max(1, len(settings.dropouts)))
        torch.set_num_threads(threads)
        lane = Lane(settings, index, t0)
        barrier.wait(timeout=300)
        solo = None
        if solo_first:
            if index == 0:
                lane.say("calibrating alone")
                solo = lane.calibrate_train(settings.calibrate_s)
            barrier.wait(timeout=300)
        lane.say("calibrating (both lanes together)")
        together = lane.calibrate_train(settings.calibrate_s)
        ev = lane.calibrate_eval(settings.calibrate_s)
        barrier.wait(timeout=300)
        events.put(("calib", index, {"train_image_s": together, "train_image_s_solo": solo, **ev}))
        msg = commands.get()
        if msg[0] != "plan":
            return
        _, plan_d, deadline = msg
        summary = lane.run(LanePlan(**plan_d), deadline, events.put)
        events.put(("done", index, summary))
    except BaseException as exc:  # noqa: BLE001 -- reported to the parent, which decides
        events.put(("error", index, _one_line(exc), traceback.format_exc(limit=6)))


def _run_processes(settings: CampaignSettings, t0: float, deadline: float, log: RunLog, n_train: int) -> None:
    import queue

    from nascsim._spawn import context

    ctx = context()  # spawned lanes that do not re-run the calling script: no __main__ guard needed
    n = len(settings.dropouts)
    events = ctx.Queue()
    commands = [ctx.Queue() for _ in range(n)]
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_worker, args=(settings.to_dict(), i, t0, events, commands[i], barrier, n == 2,
                                               os.getpid()), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    names = [lane_name(p) for p in settings.dropouts]
    calib: dict[int, dict] = {}
    failed: list[str] = []

    def get(timeout: float, any_death: bool = False):
        """The next event; None at the timeout, when every lane is gone, or (``any_death``: while
        calibrating, when the other lane would wait at the barrier) when one lane died."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                return events.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    return None
                if any_death and any(p.exitcode not in (None, 0) for p in procs):
                    return None
        return None

    while len(calib) < n:
        msg = get(max(1.0, deadline - time.time()), any_death=True)
        if msg is None:
            codes = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            raise RuntimeError("the lanes died or timed out before calibrating"
                               + (f" (exit code {', '.join(map(str, codes))})" if codes else ""))
        if msg[0] == "error":
            log.doc["traceback"] = msg[3]
            print(msg[3], flush=True)
            raise RuntimeError(f"lane {names[msg[1]]} failed while calibrating: {msg[2]}")
        if msg[0] == "calib":
            calib[msg[1]] = msg[2]
    solo = calib[0].get("train_image_s_solo")
    together = sum(1.0 / c["train_image_s"] for c in calib.values())
    concurrent = n == 1 or solo is None or together > 1.1 / solo
    mode = "concurrent (two processes, one device)" if concurrent else "sequential (two processes, one after the other)"
    log.doc["calibration"] = {names[i]: calib[i] for i in range(n)}
    log.doc["mode"] = mode
    if solo is not None:
        log.doc["concurrency_speedup"] = together * solo
    remaining = deadline - time.time() - _reserve(settings.budget_s)
    if concurrent:
        plans = _plans(settings, [calib[i] for i in range(n)], remaining, n_train)
    else:
        solo_c = [dict(calib[i], train_image_s=solo) for i in range(n)]
        plans = _plans(settings, solo_c, remaining / n, n_train)
    _announce(plans, names, log, remaining, mode)
    start = time.time()
    if concurrent:
        for i in range(n):
            log.doc["lanes"][i]["status"] = "running"
            commands[i].put(("plan", plans[i].to_dict(), start + remaining))
    else:
        log.doc["lanes"][0]["status"] = "running"
        commands[0].put(("plan", plans[0].to_dict(), start + remaining / n))
    done = set()
    while len(done) < n:
        msg = get(max(1.0, deadline + 30 - time.time()))
        if msg is None:
            break
        log.event(msg[:3] if msg[0] == "error" else msg)
        if msg[0] in ("done", "error"):
            done.add(msg[1])
            if msg[0] == "error":
                failed.append(f"{names[msg[1]]}: {msg[2]}")
                log.doc["lanes"][msg[1]]["traceback"] = msg[3]
                print(f"lane {names[msg[1]]} failed: {msg[2]}\n{msg[3]}", flush=True)
            if not concurrent and msg[1] + 1 < n:
                nxt = msg[1] + 1
                log.doc["lanes"][nxt]["status"] = "running"
                commands[nxt].put(("plan", plans[nxt].to_dict(), start + remaining))
    for p in procs:
        p.join(timeout=max(1.0, deadline + 30 - time.time()))
        if p.is_alive():
            p.terminate()
    missing = [i for i in range(n) if i not in done]

    def why(i: int) -> str:
        code = procs[i].exitcode
        return "no result before the deadline" if code in (None, 0) else f"its process ended with exit code {code}"

    if missing or failed:
        raise RuntimeError("; ".join(failed + [f"{names[i]}: {why(i)}" for i in missing]))


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------

class CampaignFailed(RuntimeError):
    """A lane failed or missed its deadline; the files written so far are valid."""


def run_campaign(settings: CampaignSettings, t0: float | None = None) -> dict:
    """Run the campaign (module docstring); returns the run log document. ``t0`` (a
    ``time.time`` value) is when the budget started (default: now)."""
    t0 = time.time() if t0 is None else t0
    deadline = t0 + settings.budget_s
    check_settings(settings)
    from nascsim.train.data import holdout_split, load_dataset
    from nascsim.train.loop import pick_device

    dev = pick_device(settings.device)
    seed = settings.recipe_for(settings.dropouts[0], 1).seed

    def fits(ds) -> None:
        holdout_split(len(ds.y_train), settings.valid_images, seed)

    ds = load_dataset(settings.data, settings.cache_dir, check=fits)
    train_idx, _ = holdout_split(len(ds.y_train), settings.valid_images, seed)
    n_train = len(train_idx) if settings.train_images is None else min(len(train_idx), settings.train_images)
    data_s = time.time() - t0
    workers = settings.workers if settings.workers != "auto" else ("2" if dev.type == "cuda" else "1")
    import torch

    from nascsim.train.pretrain import git_commit

    out = Path(settings.out)
    doc = {
        "t0": t0,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t0)),
        "budget_s": settings.budget_s,
        "settings": settings.to_dict(),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "torch": str(torch.__version__),
        "git_commit": git_commit(),
        "dataset": {"name": ds.name, "source": ds.source, "train": int(len(ds.y_train)), "test": int(len(ds.y_test)),
                    "classes": ds.n_classes},
        "data_s": round(data_s, 3),
        "workers": int(workers),
        "lanes": [{"name": lane_name(p), "split_dropout": p, "status": "waiting", "epochs_log": [], "parts": {}}
                  for p in settings.dropouts],
    }
    log = RunLog(out / RUN_LOG, doc)
    log.write()
    print(f"campaign: {settings.space} space, {ds.name} ({len(ds.y_train)} training images), device {doc['device']}, "
          f"budget {settings.budget_s:.0f} s; data ready after {data_s:.1f} s", flush=True)
    try:
        if workers == "2":
            _run_processes(settings, t0, deadline - RESERVE_S / 2, log, n_train)
        else:
            _run_inline(settings, t0, deadline - RESERVE_S / 2, ds, log)
    except Exception as exc:  # noqa: BLE001 -- the log says what happened; the files stay valid
        log.doc["error"] = _one_line(exc)
        log.doc.setdefault("traceback", traceback.format_exc(limit=8))
        log.doc["wall_s"] = round(time.time() - t0, 3)
        log.write()
        raise CampaignFailed(f"campaign stopped: {_one_line(exc)} (files in {out} are valid; see {RUN_LOG})") from None
    log.doc["wall_s"] = round(time.time() - t0, 3)
    log.doc["finished"] = True
    log.write()
    for lane in log.doc["lanes"]:
        print(f"{lane['name']}: {lane.get('file')} ({lane.get('rows')} rows); "
              f"epochs {len(lane['epochs_log'])}, last sampled-subnet acc "
              f"{lane['epochs_log'][-1]['subnet_acc_mean'] if lane['epochs_log'] else float('nan'):.4f}", flush=True)
    print(f"campaign done in {log.doc['wall_s']:.1f} s of {settings.budget_s:.0f} s", flush=True)
    return log.doc


__all__ = ["CampaignFailed", "CampaignSettings", "Lane", "check_settings", "run_campaign", "RUN_LOG"]
