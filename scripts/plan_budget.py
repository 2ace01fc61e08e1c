"""Print the campaign's plan for assumed speeds (no torch, no GPU): what `nascsim supernet
campaign` would plan if its calibration measured these numbers.

    PYTHONPATH=. python scripts/plan_budget.py --budget 500 --startup 40 --train-img-s 7500 \\
        --main-pair-s 0.024 --noise-eval-s 0.002 --monitor-s 0.3

Speeds are per lane under the concurrency the run would use (two lanes sharing one GPU: each
lane's own rate). The low-noise pair costs ``held_out / batch_images`` main pairs.
"""

from __future__ import annotations

import argparse

from nascsim.train.campaign import RESERVE_S, RESERVE_SHARE
from nascsim.train.plan import Speeds, Targets, describe, plan_lane


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, required=True, help="--budget-s of the campaign")
    ap.add_argument("--startup", type=float, required=True, help="seconds before the plan: data, processes, calibration")
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--concurrent", action="store_true", default=True)
    ap.add_argument("--sequential", dest="concurrent", action="store_false")
    ap.add_argument("--train-images", type=int, default=45000)
    ap.add_argument("--train-img-s", type=float, required=True, help="training images per second per lane")
    ap.add_argument("--monitor-s", type=float, required=True)
    ap.add_argument("--main-pair-s", type=float, required=True)
    ap.add_argument("--noise-eval-s", type=float, required=True)
    ap.add_argument("--held-out", type=int, default=5000)
    ap.add_argument("--batch-images", type=int, default=500)
    ap.add_argument("--main-pairs", type=int, default=5000)
    args = ap.parse_args()
    remaining = args.budget - RESERVE_S / 2 - args.startup - (RESERVE_S + RESERVE_SHARE * args.budget)
    seconds = remaining if args.concurrent else remaining / args.lanes
    speeds = Speeds(train_image_s=1 / args.train_img_s, monitor_s=args.monitor_s, main_pair_s=args.main_pair_s,
                    lowvar_pair_s=args.main_pair_s * -(-args.held_out // args.batch_images), noise_eval_s=args.noise_eval_s)
    block = max(2, min(100, args.main_pairs // 20))
    plan = plan_lane(seconds, speeds, Targets(train_images=args.train_images, main_pairs=args.main_pairs, main_block=block))
    print(f"{remaining:.0f} s left for the lanes after {args.startup:.0f} s of start-up; each lane "
          f"{'runs concurrently' if args.concurrent else 'runs in turn'} with {seconds:.0f} s")
    print(describe(plan, "each lane"))
    print(f"epoch {args.train_images / args.train_img_s + args.monitor_s:.1f} s; images seen {plan.epochs * args.train_images}")


if __name__ == "__main__":
    main()
