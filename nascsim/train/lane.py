"""One lane of the campaign (:mod:`nascsim.train.campaign`): one supernet on one device, from
calibration to its evaluation file.

- :meth:`Lane.calibrate_train` and :meth:`Lane.calibrate_eval` time a throw-away supernet: seconds
  per training image, per main pair, per noise evaluation, per monitor call (the low-noise pair
  costs as many main pairs as the held-out split has batches);
- :meth:`Lane.run` pre-trains the supernet for the planned epochs (re-sized once from the first
  epoch's measured time, while the warm-up keeps the learning rate independent of it; stopping
  early only when the
  evaluation would otherwise miss the deadline, or when an epoch's loss is not finite: then the
  weights of the epoch before are evaluated), logs per epoch the training loss and the
  held-out accuracy of sampled subnets, then evaluates the noise set, the low-noise set and the
  main pairs, each stopped at the deadline, rewriting the evaluation file atomically after each
  set and at least every ``flush_s`` seconds.

The evaluation pairs come from seeded streams (one per set, one per block of main pairs), so both
lanes of a campaign evaluate the same pairs on the same batches when their plans agree; the
dropout masks of the evaluation are seeded per unit (noise minibatch, group of low-noise pairs,
block of main pairs).

Resume. After every epoch the lane writes ``OUT/resume/<lane>.pt`` atomically (supernet,
optimizer, epoch, log, recipe with the epochs in force, plan; once more when training ends,
marked ``trained``). :meth:`Lane.run` with ``resume=True`` reads it back with the safe loader
(:func:`nascsim.train.checkpoint.load_checkpoint`; fields checked before use) and continues from
the next epoch -- every epoch reseeds its generators from (seed, epoch), so the weights equal an
uninterrupted run's -- then continues the evaluation after the rows already in its parquet: the
metadata key ``progress`` says which sets are finished and the next pair id, the rows say how far
the set in progress got (noise minibatches, low-noise pairs, main blocks), and the seeded streams
give the same pairs and masks for the rest. A lane killed at any moment therefore ends with the
same rows as one never interrupted (given the same plan, on a CPU).

Test hook: ``NASCSIM_CAMPAIGN_KILL_AT=<lane>:<stage>:<n>`` (stage ``epoch`` or ``main``) makes the
lane kill its campaign with SIGKILL right after epoch n's checkpoint, or after main block n's rows
are written -- a cut-off at a named point (tests/test_campaign_resume.py).
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from nascsim.train.plan import LanePlan

from nascsim.train.settings import RUN_LOG, CampaignSettings, lane_name

RESUME_DIR = "resume"  # OUT/resume/<lane>.pt: removed when the campaign finishes
KILL_AT_ENV = "NASCSIM_CAMPAIGN_KILL_AT"
LANE_CHECKPOINT = "campaign-lane"  # the ``kind`` of a lane's resume checkpoint


def resume_path(out: str | Path, name: str) -> Path:
    """Where lane ``name`` of the campaign in ``out`` keeps its resume checkpoint."""
    return Path(out) / RESUME_DIR / f"{name}.pt"


def unit_seed(seed: int, design: str, unit: int) -> int:
    """The torch seed of one evaluation unit (its dropout masks)."""
    code = {"noise": 1, "lowvar": 2, "main": 3}[design]
    return int(np.random.SeedSequence([seed, 0xCA4, 0xD0, code, unit]).generate_state(1, dtype=np.uint64)[0] >> 1)


CALIBRATE_PAIRS = 4  # main-pair calls are timed over at least this many pairs where they fit


class Lane:
    """One supernet's training and evaluation on the device (see module docstring)."""

    def __init__(self, settings: "CampaignSettings", index: int, t0: float, ds=None) -> None:
        import torch

        from nascsim.space import get_space
        from nascsim.train.data import channel_stats, holdout_split, load_dataset, normalise, to_device
        from nascsim.train.evaluate import HeldOut, default_max_rows
        from nascsim.train.loop import EpochData, Precision, pick_device

        self.s, self.index, self.t0 = settings, index, t0
        self.dropout = float(settings.dropouts[index])
        self.name = lane_name(self.dropout)
        self.space = get_space(settings.space)
        self.device = pick_device(settings.device)
        self.precision = Precision.for_device(self.device)
        from nascsim.train.proxy import proxy_dataset

        self.proxy = settings.recipe_for(self.dropout, 1).proxy
        self.ds = proxy_dataset(ds if ds is not None else load_dataset(settings.data, settings.cache_dir), self.proxy)
        seed = settings.recipe_for(self.dropout, 1).seed
        train_idx, valid_idx = holdout_split(len(self.ds.y_train), settings.valid_images, seed)
        if settings.train_images is not None:
            train_idx = train_idx[: settings.train_images]
        self.stats = channel_stats(self.ds.x_train[train_idx])
        images = to_device(self.ds.x_train, self.device)
        labels = torch.as_tensor(self.ds.y_train, device=self.device)
        self.data = EpochData.of(images, labels, train_idx, self.stats)
        vidx = torch.as_tensor(valid_idx, device=self.device)
        self.held = HeldOut(normalise(images[vidx], *self.stats), labels[vidx])
        self.max_rows = settings.max_rows or default_max_rows(self.device)
        self.device_name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                            else f"cpu ({torch.get_num_threads()} threads)")
        self.campaign_pid = os.getpid()  # the process a cut-off (test hook) kills

    # -- the test hook of a cut-off --------------------------------------------------------------
    def _kill_point(self, stage: str, n: int, before=None) -> None:
        """SIGKILL the campaign when ``NASCSIM_CAMPAIGN_KILL_AT`` names this lane, stage and count
        (module docstring); ``before()`` runs first (the write a flush would make)."""
        if os.environ.get(KILL_AT_ENV) != f"{self.name}:{stage}:{n}":
            return
        if before is not None:
            before()
        self.say(f"{KILL_AT_ENV}: killing the campaign after {stage} {n}")
        os.kill(self.campaign_pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    # -- output ----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"[{time.time() - self.t0:7.1f} s] {self.name}: {text}", flush=True)

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _model(self, recipe):
        import torch

        from nascsim.train.supernet import SuperNet

        torch.manual_seed(recipe.seed)
        model = SuperNet(self.space, self.ds.n_classes, zero_residual=recipe.zero_residual, init=recipe.init, proxy=recipe.proxy,
                         sharing=recipe.sharing)
        return self.precision.prepare(model.to(self.device))

    def _throwaway(self, recipe):
        """The supernet the calibration times (built once per lane; its weights do not matter)."""
        if getattr(self, "_cal_model", None) is None:
            self._cal_model = self._model(recipe)
        return self._cal_model

    def drop_throwaway(self) -> None:
        self._cal_model = None

    def _sampler(self, recipe) -> Callable:
        from nascsim.train.sampling import epoch_paths

        return lambda rng, steps: epoch_paths(self.space, steps, recipe.lambda_x, recipe.sampling, rng)

    # -- calibration -----------------------------------------------------------------------------
    def calibrate_train(self, seconds: float) -> float:
        """Seconds per training image: steps of a throw-away supernet at the recipe's batch size,
        timed until about ``seconds`` have passed (1 to 50 steps; on CUDA after a warm-up step)."""
        from nascsim.train.loop import make_optimizer, run_epoch

        recipe = self.s.recipe_for(self.dropout, 1)
        model = self._throwaway(recipe)
        opt = make_optimizer(model, recipe)
        bs, steps = self.data.steps(recipe.batch_size)
        if self.device.type == "cuda":
            run_epoch(model, opt, self.data, recipe, 0, self._sampler(recipe), self.precision, max_steps=1)
            self._sync()
        t = time.perf_counter()
        done, chunk = 0, 1
        while done == 0 or (time.perf_counter() - t < seconds and done < 50):
            run_epoch(model, opt, self.data, recipe, 1 + done, self._sampler(recipe), self.precision, max_steps=chunk)
            self._sync()
            done += chunk
            chunk = min(chunk * 2, steps, 10)
        return (time.perf_counter() - t) / (done * bs)

    def _timed(self, fn) -> float:
        self._sync()
        t = time.perf_counter()
        fn()
        self._sync()
        return time.perf_counter() - t

    def calibrate_eval(self, seconds: float) -> dict:
        """Seconds per main pair, per noise evaluation, per low-noise pair and per monitor call,
        from calls of a throw-away supernet, each timed the second time it runs (the first builds
        the kernels of its shapes: oneDNN primitives on a CPU, CUDA kernels on a GPU). The
        cheapest call (one pair on one noise minibatch) comes first; a call whose predicted time
        exceeds ``seconds`` runs on fewer images and is scaled up by the image count (time per
        image is flat on a CPU; on a GPU the calls are fast enough to run whole). Where it fits, a call of as many
        pairs as the evaluation stacks, at least :data:`CALIBRATE_PAIRS`, gives the per-pair time
        (one pair alone was 0.13 s where 6 others averaged 0.47 s: a pair of skips costs little)."""
        from nascsim.train.evaluate import BatchStatistics, eval_shared, pairs_per_call
        from nascsim.train.sampling import uniform_pairs

        recipe = self.s.recipe_for(self.dropout, 1)
        model = self._throwaway(recipe)
        rng = np.random.default_rng(7)
        ps = list(self.s.ps)
        s = self.s
        m = min(pairs_per_call(s.batch_images, len(ps), self.max_rows), s.main_pairs)
        m_noise = min(s.noise_pairs, pairs_per_call(s.noise_images, len(ps), self.max_rows))
        archs, splits = uniform_pairs(self.space, max(m, m_noise, s.monitor_pairs, CALIBRATE_PAIRS), rng)

        def ev(n_img: int, pairs: int, loss_rates) -> float:
            x, y = self.held.x[:n_img], self.held.y[:n_img]
            call = lambda: eval_shared(model, x, y, archs[:pairs], splits[:pairs], loss_rates, self.max_rows,  # noqa: E731
                                       self.precision)
            self._timed(call)  # warm-up: the same shapes, so the second call runs as the evaluation will
            return self._timed(call)

        def scaled(n_img: int, pairs: int, loss_rates, per_image_pair: float) -> float:
            """Time of a call of ``pairs`` pairs on ``n_img`` images, measured on fewer images
            when the prediction exceeds ``seconds``."""
            predicted = per_image_pair * n_img * pairs
            k = n_img if predicted <= seconds else max(1, int(n_img * seconds / predicted))
            return ev(k, pairs, loss_rates) * n_img / k

        with BatchStatistics(model):
            noise_eval_s = ev(s.noise_images, 1, ps)
            if m_noise > 1 and noise_eval_s * m_noise <= seconds:
                noise_eval_s = ev(s.noise_images, m_noise, ps) / m_noise
            per_img = noise_eval_s / s.noise_images
            main_pair_s = scaled(s.batch_images, 1, ps, per_img)
            q = min(max(m, CALIBRATE_PAIRS), s.main_pairs, len(splits))  # pairs differ in cost (skips are free)
            if q > 1 and main_pair_s * q <= seconds:
                main_pair_s = ev(s.batch_images, q, ps) / q
            per_img_p0 = per_img / len(ps) * 2  # one p: the head and one tail, about 2/len(ps) of all p
            monitor_s = scaled(s.monitor_images, s.monitor_pairs, [0.0], per_img_p0)
        chunks = math.ceil(len(self.held) / s.batch_images)
        return {"main_pair_s": main_pair_s, "noise_eval_s": noise_eval_s, "monitor_s": monitor_s,
                "lowvar_pair_s": main_pair_s * chunks, "pairs_per_call": m}

    # -- the run ---------------------------------------------------------------------------------
    def run(self, plan: LanePlan, deadline: float, report: Callable[[tuple], None], resume: bool = False) -> dict:
        """Train ``plan.epochs`` epochs, then evaluate the planned sets, all before ``deadline``
        (a ``time.time`` value); report progress tuples. Returns the lane's summary. With
        ``resume`` the lane continues from its resume checkpoint and its parquet, where they exist
        (module docstring); the rest of training then runs whole (the caller checked that it fits)
        and the evaluation takes what time is left."""
        import torch

        from nascsim.train.loop import epoch_seed, make_optimizer, run_epoch, save_atomic
        from nascsim.train.pretrain import git_commit, subnet_spread, supernet_id

        s = self.s
        self.drop_throwaway()
        recipe = s.recipe_for(self.dropout, plan.epochs)
        times: dict[str, float] = {}
        summary: dict = {"lane": self.name, "split_dropout": self.dropout, "plan": plan.to_dict(), "epochs_log": [],
                         "device": self.device_name, "torch": str(torch.__version__), "git_commit": git_commit()}
        eval_planned = plan.noise_s + plan.lowvar_s + plan.main_s
        model = self._model(recipe)
        opt = make_optimizer(model, recipe)
        e, trained, train_before = 0, False, 0.0
        state = self._load_resume(plan) if resume else None
        if state is not None:
            recipe = self._restore(state, model, opt, summary)
            e, trained, train_before = int(state["epoch"]), bool(state["trained"]), float(state["train_s"])
            report(("resumed", self.index, {"epochs_log": summary["epochs_log"], "trained": trained}))
            self.say(f"resumed after epoch {e} of {recipe.epochs}" + (" (training done)" if trained else ""))
        sampler = self._sampler(recipe)
        mon = self.held.x[:s.monitor_images], self.held.y[:s.monitor_images]
        t_train = time.time()
        e0 = e
        if not trained:
            self.say(f"training {recipe.epochs - e} epochs of {len(self.data.train_idx)} images, split dropout {self.dropout}")
        while not trained and e < recipe.epochs:
            done_s = time.time() - t_train
            if e > e0 and time.time() + done_s / (e - e0) + (0.0 if resume else eval_planned) > deadline:
                summary["training_cut"] = f"stopped after {e} of {recipe.epochs} epochs to leave the evaluation its time"
                self.say(summary["training_cut"])
                break
            good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            try:
                entry = run_epoch(model, opt, self.data, recipe, e, sampler, self.precision)
            except FloatingPointError as exc:
                model.load_state_dict(good)
                summary["training_cut"] = (f"{exc}; evaluating the weights after epoch {e} "
                                           f"(the last finite ones)" if e else f"{exc}; evaluating the initial weights")
                self.say(summary["training_cut"])
                break
            entry.update(subnet_spread(model, *mon, s.monitor_pairs, epoch_seed(recipe.seed, 0, 3), self.precision))
            summary["epochs_log"].append(entry)
            report(("epoch", self.index, entry))
            self.say(f"epoch {e + 1}/{recipe.epochs} loss {entry['loss']:.4f} sampled-subnet acc "
                     f"{entry['subnet_acc_mean']:.4f} (sd {entry['subnet_acc_sd']:.4f}) {entry['images_per_s']:.0f} img/s "
                     f"{entry['s']:.1f} s")
            e += 1
            if e == 1 and s.epochs is None and recipe.warmup_epochs >= 1:
                recipe = self._replan(recipe, time.time() - t_train, eval_planned, deadline, summary)
                if "replanned" in summary:
                    report(("replanned", self.index, summary["replanned"]))
            self._save_resume(model, opt, recipe, plan, summary, e, False, train_before + time.time() - t_train)
            self._kill_point("epoch", e)
        times["train_s"] = train_before + time.time() - t_train
        if not trained:
            e = len(summary["epochs_log"])  # a diverged epoch is not counted
            self._save_resume(model, opt, recipe, plan, summary, e, True, times["train_s"])
            report(("part", self.index, "train", {"epochs": e, "s": times["train_s"], "cut": summary.get("training_cut")}))
        epochs = len(summary["epochs_log"])
        sid = supernet_id(self.space.name, self.ds.name, self.dropout, epochs)
        summary["supernet"] = sid
        if s.checkpoint_dir:  # the layout of `supernet train` checkpoints (`supernet evaluate` reads it)
            save_atomic({"model": model.state_dict(), "kind": "supernet", "space": self.space.name, "epoch": epochs,
                         "log": summary["epochs_log"], "recipe": recipe.to_dict(), "classes": self.ds.n_classes,
                         "dataset": self.ds.name, "dataset_source": self.ds.source,
                         "train_images": int(len(self.data.train_idx)), "train_images_cap": s.train_images,
                         "valid_images": s.valid_images, "stats": self.stats, "git_commit": summary["git_commit"],
                         "torch": summary["torch"], "device": self.device_name, "id": sid},
                        Path(s.checkpoint_dir) / f"{sid}.pt")
        return self._evaluate(model, recipe, plan, deadline, report, summary, times, resume)

    # -- resume ----------------------------------------------------------------------------------
    def _save_resume(self, model, opt, recipe, plan: LanePlan, summary: dict, epoch: int, trained: bool,
                     train_s: float) -> None:
        """The lane's state after ``epoch`` epochs, atomically (:func:`resume_path`)."""
        from nascsim.train.loop import save_atomic

        save_atomic({"kind": LANE_CHECKPOINT, "lane": self.name, "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "epoch": int(epoch), "log": summary["epochs_log"], "recipe": recipe.to_dict(), "plan": plan.to_dict(),
                     "trained": bool(trained), "train_s": float(train_s), "training_cut": summary.get("training_cut"),
                     "replanned": summary.get("replanned")}, resume_path(self.s.out, self.name))

    def _load_resume(self, plan: LanePlan) -> dict | None:
        """The lane's resume checkpoint (None when it has none), its fields checked: this lane,
        this plan, the campaign's recipe but for the epochs, a log of one entry per epoch."""
        from nascsim.safe_load import StructureError, need_dict, need_float, need_str
        from nascsim.train.checkpoint import load_checkpoint, require

        path = resume_path(self.s.out, self.name)
        if not path.exists():
            return None
        state = load_checkpoint(path, LANE_CHECKPOINT)
        require(state, path, "model", "optimizer", "epoch", "log", "recipe")
        try:
            if need_str(state.get("lane"), f"{path}: lane") != self.name:
                raise StructureError(f"{path}: lane is {state['lane']!r}, not {self.name!r}")
            if not isinstance(state.get("trained"), bool):
                raise StructureError(f"{path}: trained must be true or false, got {state.get('trained')!r}")
            need_float(state.get("train_s"), f"{path}: train_s", 0.0, 1e9)
            for k in ("training_cut",):
                if state.get(k) is not None:
                    need_str(state[k], f"{path}: {k}")
            if state.get("replanned") is not None:
                need_dict(state["replanned"], f"{path}: replanned")
            if need_dict(state.get("plan"), f"{path}: plan") != plan.to_dict():
                raise StructureError(f"{path} holds another plan than campaign.json's for {self.name}")
        except StructureError:
            raise
        except (TypeError, ValueError) as exc:
            raise StructureError(f"{path}: {exc}") from None
        from nascsim.train.recipe import Recipe

        stored = Recipe.from_dict(state["recipe"])
        if stored != self.s.recipe_for(self.dropout, stored.epochs):
            raise StructureError(f"{path} was trained with another recipe than the campaign's")
        if not (len(state["log"]) == state["epoch"] <= stored.epochs):
            raise StructureError(f"{path}: {len(state['log'])} log entries for epoch {state['epoch']} of {stored.epochs}")
        return state

    def _restore(self, state: dict, model, opt, summary: dict):
        """Weights, optimizer and log of a checked resume checkpoint into this lane; its recipe."""
        from nascsim.train.recipe import Recipe

        path = resume_path(self.s.out, self.name)
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} does not fit this lane's supernet ({str(exc).splitlines()[0][:160]})") from None
        summary["epochs_log"] = list(state["log"])
        for k in ("training_cut", "replanned"):
            if state.get(k) is not None:
                summary[k] = state[k]
        return Recipe.from_dict(state["recipe"])

    def _replan(self, recipe, epoch_s: float, eval_s: float, deadline: float, summary: dict):
        """After the first epoch, still inside the warm-up (where the learning rate does not depend
        on the number of epochs), size the epochs again from that epoch's measured time: the
        calibration's first steps pay one-off costs, and the GPU may run faster or slower than
        its few seconds showed. Keeps the evaluation's planned time and 5% in hand."""
        from dataclasses import replace

        left = deadline - time.time()
        more = int(max(0.0, 0.95 * left - eval_s) // max(epoch_s, 1e-9))
        epochs = max(1, min(self.s.max_epochs, 1 + more))
        if epochs != recipe.epochs:
            summary["replanned"] = {"epochs_planned": recipe.epochs, "epochs": epochs, "first_epoch_s": round(epoch_s, 3)}
            self.say(f"first epoch took {epoch_s:.1f} s: {epochs} epochs instead of {recipe.epochs}")
            recipe = replace(recipe, epochs=epochs)
        return recipe

    def _evaluate(self, model, recipe, plan: LanePlan, deadline: float, report, summary: dict, times: dict,
                  resume: bool = False) -> dict:
        import torch

        from nascsim.train.evaluate import EvalTable, Evaluator, sample_eval_pairs

        s = self.s
        deadline_pc = time.perf_counter() + (deadline - time.time())  # the Evaluator's clock
        path = Path(s.out) / f"{summary['supernet']}.parquet"
        table = EvalTable(summary["supernet"], self.ds.name, recipe.seed, s.ps)
        finished, next_pair = {}, 0
        if resume and path.exists():
            finished, next_pair = self._restore_rows(path, table, times)
        last_write = [time.time()]

        def metadata() -> dict:
            summary["progress"] = {"parts_done": dict(summary.get("done", {})), "next_pair": int(ev.next_pair)}
            return self._metadata(recipe, summary, times, table)

        def write() -> None:
            table.write(path, metadata())
            last_write[0] = time.time()

        def flush() -> None:
            if time.time() - last_write[0] >= s.flush_s:
                write()

        def seed_unit(design: str, unit: int) -> None:
            torch.manual_seed(unit_seed(recipe.seed, design, unit))

        ev = Evaluator(model, self.held, table, s.ps, s.batch_images, self.max_rows, self.precision, after_unit=flush,
                       before_unit=seed_unit)
        ev.next_pair = next_pair
        near_kw = dict(thresholds=s.thresholds, band=s.band, head=s.head, tail=s.tail, classes=self.ds.n_classes)

        def pairs(n: int, *stream: int):
            rng = np.random.default_rng(np.random.SeedSequence([recipe.seed, 0xCA4, *stream]))
            a, k, _ = sample_eval_pairs(self.space, n, s.near_share, rng, **near_kw)
            return a, k, rng

        parts = [("noise", plan.noise_pairs), ("lowvar", plan.lowvar_pairs), ("main", plan.main_pairs)]
        for part, n in parts:
            if part in finished:
                summary.setdefault("done", {})[part] = finished[part]
                continue
            t = time.time()
            first, done = self._resume_point(table, part, plan)
            if first is not None:  # the set was cut off: its first pair id, and the pairs after it done
                ev.next_pair = first + (0 if part == "noise" else done)
            if part == "noise":
                a, k, _ = pairs(n, 1)
                done += ev.noise(a, k, plan.noise_batches, s.noise_images, deadline_pc, first_batch=done)
                got = f"{n} pairs x {done} minibatches of {s.noise_images} images"
            elif part == "lowvar":
                a, k, _ = pairs(n, 2)
                done += ev.lowvar(a, k, deadline_pc, first_pair=done)
                got = f"{done} pairs on {len(self.held)} images"
            else:
                t_block = 0.0
                for b, start in enumerate(range(0, n, plan.main_block)):
                    if start < done:
                        continue
                    if time.time() + t_block > deadline:
                        break
                    tb = time.time()
                    a, k, rng = pairs(min(plan.main_block, n - start), 3, b)
                    ev.main_block(a, k, s.repeat_share, rng, unit=b)
                    done += len(k)
                    t_block = time.time() - tb
                    self._kill_point("main", b + 1, write)
                got = f"{done} pairs (+ repeats) on batches of {s.batch_images} images"
            times[f"{part}_s"] = times.get(f"{part}_s", 0.0) + time.time() - t
            summary.setdefault("done", {})[part] = done
            write()
            report(("part", self.index, part, {"done": done, "s": times[f"{part}_s"], "rows": len(table)}))
            self.say(f"{part}: {got} in {times[part + '_s']:.1f} s; {path.name} has {len(table)} rows")
        if not path.exists():  # every set was finished before a cut-off that came before the summary
            write()
        summary.update({"file": path.name, "rows": len(table), "times": times, "bytes": path.stat().st_size})
        return summary

    def _restore_rows(self, path: Path, table, times: dict) -> tuple[dict, int]:
        """The rows of the lane's parquet into ``table``; returns (finished sets with their counts,
        the next pair id), from its ``progress`` metadata. Read as a regular file, not followed
        through a link; its metadata through the safe JSON loader."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from nascsim.atomic import read_regular_bytes
        from nascsim.safe_load import StructureError, loads_json, need_dict, need_float, need_int
        from nascsim.train.evaluate import METADATA_KEY

        raw = read_regular_bytes(path, "evaluation file", follow=False)
        try:
            frame = pq.read_table(pa.BufferReader(raw))
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{path} is not a readable parquet file ({str(exc).splitlines()[0][:160]})") from None
        where = f"{path}: schema metadata {METADATA_KEY!r}"
        md = need_dict(loads_json((frame.schema.metadata or {}).get(METADATA_KEY.encode(), b"null"), where), where)
        progress = need_dict(md.get("progress"), f"{where} progress")
        done = need_dict(progress.get("parts_done"), f"{where} progress.parts_done")
        finished = {}
        for k, v in done.items():
            if k not in ("noise", "lowvar", "main"):
                raise StructureError(f"{where}: progress.parts_done names {k!r}")
            finished[k] = need_int(v, f"{where} progress.parts_done.{k}", 0, 10**9)
        next_pair = need_int(progress.get("next_pair"), f"{where} progress.next_pair", 0, 10**12)
        for k, v in need_dict(md.get("wall_s", {}), f"{where} wall_s").items():
            if k != "train_s":
                times[str(k)] = need_float(v, f"{where} wall_s.{k}", 0.0, 1e9)
        try:
            table.extend(frame)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        return finished, next_pair

    def _resume_point(self, table, part: str, plan: LanePlan) -> tuple[int | None, int]:
        """(first pair id, units done) of a set cut off inside ``table`` -- noise minibatches,
        low-noise pairs, main pairs (whole blocks) -- or (None, 0) when it has no rows."""
        rows = [i for i, d in enumerate(table.cols["design"]) if d == part]
        if not rows:
            return None, 0
        ids = {table.cols["pair"][i] for i in rows}
        if part == "noise":
            batches = {table.cols["batch"][i] for i in rows}
            if batches != set(range(len(batches))) or len(ids) != plan.noise_pairs:
                raise ValueError(f"{self.name}: the noise rows in its parquet are not whole minibatches of its plan")
            return min(ids), len(batches)
        if ids != set(range(min(ids), min(ids) + len(ids))):
            raise ValueError(f"{self.name}: the {part} rows in its parquet do not hold consecutive pairs")
        if part == "main" and len(ids) not in range(0, plan.main_pairs + 1, plan.main_block) and len(ids) != plan.main_pairs:
            raise ValueError(f"{self.name}: the main rows in its parquet are not whole blocks of {plan.main_block} pairs")
        return min(ids), len(ids)

    def _metadata(self, recipe, summary: dict, times: dict, table) -> dict:
        from nascsim.train.pretrain import machine

        log = summary["epochs_log"]
        s = self.s
        return {
            "supernet": summary["supernet"],
            "id": summary["supernet"],
            "dataset": self.ds.name,
            "dataset_source": self.ds.source,
            "space": self.space.name,
            "classes": self.ds.n_classes,
            "split_dropout_train": self.dropout,
            "lambda_x": recipe.lambda_x,
            "epochs": len(log),
            "epochs_planned": recipe.epochs,
            "images": int(len(self.data.train_idx)),
            "train_images": int(len(self.data.train_idx)),
            "valid_images": s.valid_images,
            "seed": recipe.seed,
            "recipe": recipe.to_dict(),
            "precision": asdict(self.precision),
            "git_commit": summary["git_commit"],
            "final_train_loss": log[-1]["loss"] if log else None,
            "final_subnet_acc_mean": log[-1]["subnet_acc_mean"] if log else None,
            "epochs_log": log,
            "train_device": self.device_name,
            "machine": machine(),
            "torch": summary["torch"],
            "wall_s": dict(times),
            "plan": summary["plan"],
            "training_cut": summary.get("training_cut"),
            "progress": summary.get("progress"),
            "eval": {
                "seed": recipe.seed,
                "device": self.device_name,
                "loss_set": list(s.ps),
                "designs": {"main": table.count("main"), "lowvar": table.count("lowvar"), "noise": table.count("noise")},
                "batch_images": s.batch_images,
                "n_batches": len(self.held) // s.batch_images,
                "noise_images": s.noise_images,
                "repeat_share": s.repeat_share,
                "sampling": f"uniform + {s.near_share:.0%} near T_th in {list(map(float, s.thresholds))} ms (band {s.band:.0%}, "
                            f"{s.head}->{s.tail}, θ~Dirichlet(0.3))",
                "bn_at_eval": "batch statistics of the evaluated batch",
                "head_reused_across_p": True,
                "max_rows": self.max_rows,
            },
            "campaign": {"budget_s": s.budget_s, "run_log": RUN_LOG},
        }
