"""``nascsim supernet campaign``: the accuracy surrogate's whole dataset from one timed command.

Within ``budget_s`` seconds of wall time, from start to the last byte written:

1. decode the dataset (once; cached as uint8 arrays);
2. start one *lane* per supernet -- split dropout 0.5 (NASC, HWNAS w/ dropout) and 0 (HWNAS) --
   each holding the data on the device; on CUDA the lanes are two processes sharing the GPU (the
   nets are launch-bound, so two processes fill each other's idle time); on a CPU with at least
   as many cores as lanes, one process per lane with ``cores // lanes`` torch threads each, side
   by side (``--workers 1``: the lanes one after the other in one process);
3. calibrate: each lane times a few training steps and evaluation calls of a throw-away supernet;
   with two lane processes lane 0 first times training alone, then both together (both numbers
   go to the log); on CUDA the lanes run concurrently only when that is faster in sum (else one
   after the other), on a CPU with a core per lane always;
4. plan (:mod:`nascsim.train.plan`) and print the plan: epochs and pair counts per lane;
5. each lane pre-trains its supernet (Algorithm 1, lines 2-4: λ_x (arch, split) pairs per
   minibatch, 2 in the paper and 1 in the CPU recipe, dropout p at the split; the recipe of :class:`nascsim.train.loop.Recipe`) and logs
   per epoch the training loss and the held-out accuracy of sampled subnets;
6. then evaluates it (:class:`nascsim.train.evaluate.Evaluator`): the minibatch-noise set, the
   low-noise set and the main pairs, rewriting its parquet atomically every ``flush_s`` seconds and
   after each set, so that a run cut off at any moment leaves valid files.

Output (at most 3 files): ``<supernet id>.parquet`` per lane (rows as
:mod:`nascsim.train.evaluate` describes; schema metadata ``nascsim_supernet``: recipe, per-epoch
log, device, torch version, wall times per part, git commit, plan) and ``campaign.json``, the run
log (settings, calibration, plans, per-lane progress), rewritten atomically as the run goes.
While it runs, ``resume/`` holds each lane's checkpoint (:mod:`nascsim.train.lane`); it is
removed when the campaign finishes.

Resume (:func:`run_campaign` with ``resume=True``, ``--resume`` on the command line): a campaign
cut off at any moment continues in the same folder. Settings and plans come from
``campaign.json`` (:func:`resume_settings` refuses a given option that differs); ``budget_s`` is
the wall time for the rest, refused at once when the rest of training does not fit it
(:func:`resume_lanes`); each lane continues from its checkpoint and its parquet's rows.

Given its plan a lane is deterministic on the CPU (seeded sampling, augmentation, dropout); the
plan itself depends on measured speed. Times are wall-clock (``time.time``) so that deadlines mean
the same in every process.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from nascsim.train.lane import RESUME_DIR, Lane
from nascsim.train.plan import LanePlan, Speeds, describe, plan_lane
from nascsim.train.settings import RUN_LOG, CampaignSettings, check_settings, lane_name

RESERVE_S = 4.0  # kept free at the end: last writes, process exits
RESERVE_SHARE = 0.02


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_workers(s: CampaignSettings, device_type: str) -> str:
    """``--workers auto``: a process per lane on CUDA, and on a CPU with at least as many cores
    as lanes (two lanes); else "1" (the lanes one after the other in this process)."""
    if s.workers != "auto":
        return s.workers
    if device_type == "cuda":
        return "2"
    return "2" if len(s.dropouts) > 1 and cores() >= len(s.dropouts) else "1"


# ------------------------------------------------------------------------------------------------
# resume: the stored run log, the settings, the rest of each lane
# ------------------------------------------------------------------------------------------------

def read_run_log(out: str | Path) -> dict:
    """The ``campaign.json`` of the campaign in ``out``, its fields checked before use. The folder
    is checked first like a result store (:func:`nascsim.atomic.check_tree`): a symbolic link
    (``resume/`` itself, a checkpoint, a parquet), FIFO, device or socket anywhere inside is
    refused before anything is read."""
    from nascsim.atomic import check_tree, read_regular_bytes
    from nascsim.safe_load import StructureError, loads_json, need_dict, need_float, need_list, need_str
    from nascsim.train.plan import LanePlan

    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"cannot resume: {out} is not a folder")
    check_tree(out, "campaign folder")
    if (out / RESUME_DIR).exists() and not (out / RESUME_DIR).is_dir():
        raise ValueError(f"campaign folder {str(out)!r}: {RESUME_DIR!r} is not a folder")
    path = out / RUN_LOG
    if not path.exists():
        raise ValueError(f"cannot resume: {out} holds no campaign ({RUN_LOG})")
    where = str(path)
    doc = need_dict(loads_json(read_regular_bytes(path, RUN_LOG, follow=False, max_bytes=64 * 2**20), where), where)
    need_dict(doc.get("settings"), f"{where}: settings")
    need_float(doc.get("data_s", 0.0), f"{where}: data_s", 0.0, 1e9)
    need_dict(doc.get("dataset"), f"{where}: dataset")
    lanes = need_list(doc.get("lanes"), f"{where}: lanes", 2)
    for i, lane in enumerate(lanes):
        w = f"{where}: lanes[{i}]"
        need_dict(lane, w)
        need_str(lane.get("name"), f"{w}.name", 16)
        need_str(lane.get("status"), f"{w}.status", 16)
        for entry in need_list(lane.get("epochs_log"), f"{w}.epochs_log", 100_000):
            need_float(need_dict(entry, f"{w}.epochs_log item").get("s"), f"{w}.epochs_log item s", 0.0, 1e9)
        need_dict(lane.get("parts"), f"{w}.parts")
        if lane.get("replanned") is not None:
            from nascsim.safe_load import need_int

            need_int(need_dict(lane["replanned"], f"{w}.replanned").get("epochs"), f"{w}.replanned.epochs", 1, 10**6)
    if doc.get("plans") is not None:
        for name, plan in need_dict(doc["plans"], f"{where}: plans").items():
            try:
                LanePlan(**need_dict(plan, f"{where}: plans.{name}"))
            except TypeError as exc:
                raise StructureError(f"{where}: plans.{name} is not a lane plan ({exc})") from None
    return doc


def resume_settings(given: CampaignSettings, options: dict[str, str]) -> CampaignSettings:
    """The settings of the campaign in ``given.out``, from its ``campaign.json``, with this call's
    ``budget_s``. ``options`` maps the settings given on this call (``"lr"`` for a recipe field is
    ``"recipe.lr"``) to their option names; each must equal the stored value, else one
    ``ValueError`` naming the option and both values."""
    from nascsim.safe_load import StructureError

    doc = read_run_log(given.out)
    if doc.get("finished"):
        raise ValueError(f"the campaign in {given.out} has finished; there is nothing to resume")
    try:
        stored = CampaignSettings.from_dict(doc["settings"])
    except (TypeError, KeyError, ValueError) as exc:
        raise StructureError(f"{Path(given.out) / RUN_LOG}: settings are not a campaign's ({exc})") from None
    paths = ("data", "cache_dir", "checkpoint_dir")
    for key, option in sorted(options.items()):
        if key in ("budget_s", "out"):
            continue
        if key.startswith("recipe."):
            was, now = stored.recipe.get(key[7:]), given.recipe.get(key[7:])
        else:
            was, now = getattr(stored, key), getattr(given, key)
        if key in paths and was is not None and now is not None:
            same = Path(was).resolve() == Path(now).resolve()
        else:
            same = was == now
        if not same:
            raise ValueError(f"{option} {now!r} does not match the campaign being resumed in {given.out} ({was!r}); "
                             f"leave it out or give the same value")
    merged = replace(stored, budget_s=given.budget_s, out=given.out)
    check_settings(merged, resume=True)
    return merged


@dataclass(frozen=True)
class Resumed:
    """The rest of a resumed campaign: per lane its plan (from ``campaign.json``), the predicted
    seconds of the rest of its training and of the evaluation sets it has not finished."""

    plans: list
    concurrent: bool
    train_rest: list[float]
    eval_rest: list[float]

    def deadlines(self, start: float, remaining: float) -> list[float]:
        """Side by side every lane has all of ``remaining``; one after the other each lane gets
        the rest of its training and a share of the time beyond all training by its evaluation."""
        n = len(self.plans)
        if self.concurrent:
            return [start + remaining] * n
        spare = max(0.0, remaining - sum(self.train_rest))
        total_eval = sum(self.eval_rest)
        out, t = [], start
        for i in range(n):
            t += self.train_rest[i] + spare * (self.eval_rest[i] / total_eval if total_eval > 0 else 1.0 / n)
            out.append(t)
        out[-1] = start + remaining
        return out


def resume_lanes(settings: CampaignSettings, doc: dict, workers: str, device_type: str) -> Resumed | None:
    """The rest of each lane from the run log (None when the campaign was cut off before its plan:
    it starts again from the calibration). ``ValueError`` in one line when the rest of training
    (epochs left x the slower of the planned and the measured seconds per epoch; the lanes' sum
    when they run one after the other), the data loading and the reserve exceed ``budget_s``."""
    from nascsim.train.plan import LanePlan

    if not doc.get("plans"):
        return None
    names = [lane_name(p) for p in settings.dropouts]
    lanes = {ln["name"]: ln for ln in doc["lanes"]}
    if set(doc["plans"]) != set(names) or set(lanes) != set(names):
        raise ValueError(f"{Path(settings.out) / RUN_LOG} holds the lanes {sorted(lanes)}, not {names}")
    concurrent = workers == "2" and (str(doc.get("mode", "")).startswith("concurrent")
                                    or (device_type == "cpu" and cores() >= len(names)))
    plans, train_rest, eval_rest, left = [], [], [], []
    for name in names:
        plan, lane = LanePlan(**doc["plans"][name]), lanes[name]
        plans.append(plan)
        if lane["status"] == "done":
            train_rest.append(0.0)
            eval_rest.append(0.0)
            continue
        epochs = int((lane.get("replanned") or {}).get("epochs", plan.epochs))
        done = len(lane["epochs_log"])
        measured = [float(e["s"]) for e in lane["epochs_log"]]
        per_epoch = max(plan.train_s / max(plan.epochs, 1), sum(measured) / len(measured) if measured else 0.0)
        rest = 0 if "train" in lane["parts"] else max(0, epochs - done)
        train_rest.append(rest * per_epoch)
        eval_rest.append(sum(getattr(plan, f"{part}_s") for part in ("noise", "lowvar", "main") if part not in lane["parts"]))
        if rest:
            left.append(f"{name} {rest} of {epochs} epochs")
    train = max(train_rest) if concurrent else sum(train_rest)
    need = float(doc.get("data_s", 0.0)) + train + _reserve(settings.budget_s)
    if need > settings.budget_s:
        raise ValueError(f"--budget-s {settings.budget_s:g} does not fit the rest of training ({', '.join(left)}: about "
                         f"{train:.0f} s, with the data and the reserve {need:.0f} s); give at least {math.ceil(need)}")
    return Resumed(plans, concurrent, train_rest, eval_rest)


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
        elif kind == "resumed":
            entry["epochs_log"] = list(msg[2]["epochs_log"])
        elif kind == "replanned":
            entry["replanned"] = msg[2]
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
# in one process (--workers 1, or a CPU with fewer cores than lanes)
# ------------------------------------------------------------------------------------------------

def _run_inline(settings: CampaignSettings, t0: float, deadline: float, ds, log: RunLog,
                resumed: Resumed | None = None) -> None:
    lanes = [Lane(settings, i, t0, ds) for i in range(len(settings.dropouts))]
    lane0 = lanes[0]
    if resumed is None:
        lane0.say("calibrating")
        c = {"train_image_s": lane0.calibrate_train(settings.calibrate_s), **lane0.calibrate_eval(settings.calibrate_s)}
        calib = [dict(c) for _ in lanes]
        log.doc["calibration"] = {lane_name(p): dict(c, mode="measured in lane 0, one process") for p in settings.dropouts}
        log.doc["mode"] = "sequential (one process)"
        remaining = deadline - time.time() - _reserve(settings.budget_s)
        plans = _plans(settings, calib, remaining / len(lanes), len(lane0.data.train_idx))
        _announce(plans, [ln.name for ln in lanes], log, remaining, "sequential (one process)")
        start = time.time()
        deadlines = [start + (i + 1) * remaining / len(lanes) for i in range(len(lanes))]
    else:
        remaining = deadline - time.time() - _reserve(settings.budget_s)
        plans = resumed.plans
        _announce_resume(resumed, [ln.name for ln in lanes], log, remaining, "sequential (one process)")
        deadlines = resumed.deadlines(time.time(), remaining)
    for i, (lane, plan) in enumerate(zip(lanes, plans)):
        lane_deadline = deadlines[i]
        log.doc["lanes"][i]["status"] = "running"
        try:
            summary = lane.run(plan, lane_deadline, log.event, resume=resumed is not None)
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


def _announce_resume(resumed: Resumed, names: list[str], log: RunLog, remaining: float, mode: str) -> None:
    log.doc["mode"] = mode
    log.write()
    print(f"resuming ({mode}; {remaining:.0f} s left for the lanes):", flush=True)
    for n, plan, lane, train, ev in zip(names, resumed.plans, log.doc["lanes"], resumed.train_rest, resumed.eval_rest):
        print(f"  {n}: {len(lane['epochs_log'])} of {plan.epochs} planned epochs done, about {train:.0f} s of training "
              f"and {ev:.0f} s of evaluation left (sets done: {', '.join(sorted(set(lane['parts']) - {'train'})) or 'none'})", flush=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"


# ------------------------------------------------------------------------------------------------
# a process per lane: sharing one GPU, or a core each on a CPU
# ------------------------------------------------------------------------------------------------

def _worker(settings_d: dict, index: int, t0: float, events, commands, barrier, solo_first: bool,
            parent_pid: int | None = None, resume: bool = False) -> None:
    """A lane in its own process: calibrate (lane 0 alone first, then both lanes together), wait
    for the plan, run; resumed (``resume``), wait for the plan from the run log and continue.
    Every outcome goes to ``events`` as a tuple. The lane ends with the campaign that started it
    (:func:`nascsim._children.watch_parent`)."""
    if parent_pid is not None:
        from nascsim._children import watch_parent

        watch_parent(parent_pid)
    try:
        import torch

        settings = CampaignSettings.from_dict(settings_d)
        threads = settings.threads or max(1, cores() // max(1, len(settings.dropouts)))
        torch.set_num_threads(threads)
        lane = Lane(settings, index, t0)
        if parent_pid is not None:
            lane.campaign_pid = parent_pid
        if resume:
            msg = commands.get()
            if msg[0] == "plan":
                events.put(("done", index, lane.run(LanePlan(**msg[1]), msg[2], events.put, resume=True)))
            return
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


def _run_processes(settings: CampaignSettings, t0: float, deadline: float, log: RunLog, n_train: int,
                   device_type: str = "cuda", resumed: Resumed | None = None) -> None:
    import queue

    from nascsim._spawn import context

    ctx = context()  # spawned lanes that do not re-run the calling script: no __main__ guard needed
    n = len(settings.dropouts)
    events = ctx.Queue()
    commands = [ctx.Queue() for _ in range(n)]
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_worker, args=(settings.to_dict(), i, t0, events, commands[i], barrier, n == 2,
                                               os.getpid(), resumed is not None), daemon=True) for i in range(n)]
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

    side_by_side = device_type == "cpu" and cores() >= n  # a core per lane: side by side is the plan
    while resumed is None and len(calib) < n:
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
    if resumed is None:
        solo = calib[0].get("train_image_s_solo")
        together = sum(1.0 / c["train_image_s"] for c in calib.values())
        concurrent = n == 1 or solo is None or together > 1.1 / solo or side_by_side
        mode = ("concurrent (one process per core)" if side_by_side else "concurrent (two processes, one device)"
                if concurrent else "sequential (two processes, one after the other)")
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
        deadlines = [start + remaining * ((i + 1) / n if not concurrent else 1.0) for i in range(n)]
        deadlines[-1] = start + remaining
    else:
        concurrent, plans = resumed.concurrent, resumed.plans
        remaining = deadline - time.time() - _reserve(settings.budget_s)
        mode = (("concurrent (one process per core)" if side_by_side else "concurrent (two processes, one device)")
                if concurrent else "sequential (two processes, one after the other)")
        _announce_resume(resumed, names, log, remaining, mode)
        deadlines = resumed.deadlines(time.time(), remaining)
    if concurrent:
        for i in range(n):
            log.doc["lanes"][i]["status"] = "running"
            commands[i].put(("plan", plans[i].to_dict(), deadlines[i]))
    else:
        log.doc["lanes"][0]["status"] = "running"
        commands[0].put(("plan", plans[0].to_dict(), deadlines[0]))
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
                commands[nxt].put(("plan", plans[nxt].to_dict(), deadlines[nxt]))
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


def run_campaign(settings: CampaignSettings, t0: float | None = None, resume: bool = False) -> dict:
    """Run the campaign (module docstring); returns the run log document. ``t0`` (a
    ``time.time`` value) is when the budget started (default: now). With ``resume`` the campaign
    in ``settings.out`` continues (``settings`` as :func:`resume_settings` returns them): the rest
    of each lane within ``budget_s``."""
    t0 = time.time() if t0 is None else t0
    deadline = t0 + settings.budget_s
    check_settings(settings, resume)
    from nascsim.train.data import holdout_split, load_dataset
    from nascsim.train.loop import pick_device

    dev = pick_device(settings.device)
    workers = resolve_workers(settings, dev.type)
    stored = resumed = None
    if resume:
        stored = read_run_log(settings.out)
        resumed = resume_lanes(settings, stored, workers, dev.type)
    seed = settings.recipe_for(settings.dropouts[0], 1).seed

    def fits(ds) -> None:
        holdout_split(len(ds.y_train), settings.valid_images, seed)

    ds = load_dataset(settings.data, settings.cache_dir, check=fits)
    train_idx, _ = holdout_split(len(ds.y_train), settings.valid_images, seed)
    n_train = len(train_idx) if settings.train_images is None else min(len(train_idx), settings.train_images)
    data_s = time.time() - t0
    import torch

    from nascsim.train.pretrain import git_commit

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
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
    if stored is not None:
        doc = _resumed_doc(stored, doc, settings.out)
        _remove_stale_temporaries(out)
    log = RunLog(out / RUN_LOG, doc)
    log.write()
    print(f"campaign: {settings.space} space, {ds.name} ({len(ds.y_train)} training images), device {doc['device']}, "
          f"budget {settings.budget_s:.0f} s; data ready after {data_s:.1f} s"
          + (f"; resuming ({len(doc['resumes'])})" if stored is not None else ""), flush=True)
    try:
        if workers == "2":
            _run_processes(settings, t0, deadline - RESERVE_S / 2, log, n_train, dev.type, resumed)
        else:
            _run_inline(settings, t0, deadline - RESERVE_S / 2, ds, log, resumed)
    except Exception as exc:  # noqa: BLE001 -- the log says what happened; the files stay valid
        log.doc["error"] = _one_line(exc)
        log.doc.setdefault("traceback", traceback.format_exc(limit=8))
        log.doc["wall_s"] = round(time.time() - t0, 3)
        log.write()
        raise CampaignFailed(f"campaign stopped: {_one_line(exc)} (files in {out} are valid; see {RUN_LOG})") from None
    log.doc["wall_s"] = round(time.time() - t0, 3)
    log.doc["finished"] = True
    log.write()
    _remove_resume_dir(out)
    for lane in log.doc["lanes"]:
        print(f"{lane['name']}: {lane.get('file')} ({lane.get('rows')} rows); "
              f"epochs {len(lane['epochs_log'])}, last sampled-subnet acc "
              f"{lane['epochs_log'][-1]['subnet_acc_mean'] if lane['epochs_log'] else float('nan'):.4f}", flush=True)
    print(f"campaign done in {log.doc['wall_s']:.1f} s of {settings.budget_s:.0f} s", flush=True)
    return log.doc


def _resumed_doc(stored: dict, fresh: dict, out: str) -> dict:
    """The run log of a resumed campaign: the stored one (plans, calibration, lanes' logs), this
    call's start, budget, device and versions, the earlier calls under ``resumes``. ``ValueError``
    when the data set differs from the one the campaign started with."""
    keys = ("name", "train", "test", "classes")
    was, now = ({k: d["dataset"].get(k) for k in keys} for d in (stored, fresh))
    if was != now:
        raise ValueError(f"the data set ({now}) is not the one the campaign in {out} started with ({was})")
    doc = dict(stored)
    doc["resumes"] = list(stored.get("resumes", [])) + [
        {k: stored.get(k) for k in ("started", "budget_s", "device", "git_commit", "mode", "error")}
        | {"wall_s": stored.get("updated_s")}]
    for k in ("error", "traceback", "wall_s"):
        doc.pop(k, None)
    for k in ("t0", "started", "budget_s", "settings", "device", "torch", "git_commit", "data_s", "workers"):
        doc[k] = fresh[k]
    for lane in doc["lanes"]:
        if lane["status"] != "done":
            lane["status"] = "waiting"
            lane.pop("error", None)
            lane.pop("traceback", None)
    if not doc.get("plans"):  # cut off before the plan: start again from the calibration
        doc["lanes"] = fresh["lanes"]
    return doc


def _remove_stale_temporaries(out: Path) -> None:
    """The temporary files of atomic writes that a cut-off interrupted (``.<target>.<random>.tmp``
    next to campaign.json, a parquet or a lane checkpoint: :func:`nascsim.atomic.atomic_path`)."""
    for folder, suffix in ((out, (".json", ".parquet")), (out / RESUME_DIR, (".pt",))):
        for f in folder.glob(".*.tmp") if folder.is_dir() else ():
            target = f.name[1:].rsplit(".", 2)[0]
            if target.endswith(suffix) and f.is_file() and not f.is_symlink():
                f.unlink()


def _remove_resume_dir(out: Path) -> None:
    """``OUT/resume`` (the lanes' checkpoints) once the campaign has finished."""
    import shutil

    folder = out / RESUME_DIR
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)


__all__ = ["CampaignFailed", "CampaignSettings", "Lane", "check_settings", "read_run_log", "resume_settings",
           "run_campaign", "RUN_LOG"]
