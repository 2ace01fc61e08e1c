"""The campaign's planner (nascsim.train.plan): a pure function of the lane's seconds and its
measured speeds that never plans past the budget."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.train.plan import BudgetTooSmall, Speeds, Targets, main_cost, plan_lane

# plausible GPU speeds (seconds per unit), the planner's assumption for the README's budget
GPU = Speeds(train_image_s=1 / 9000, monitor_s=0.3, main_pair_s=0.02, lowvar_pair_s=0.2, noise_eval_s=0.002)


def predicted(plan, speeds, targets):
    epoch_s = targets.train_images * speeds.train_image_s + speeds.monitor_s
    return (plan.epochs * epoch_s + main_cost(plan.main_pairs, plan.main_block, targets.repeat_share, speeds.main_pair_s)
            + plan.lowvar_pairs * speeds.lowvar_pair_s + plan.noise_pairs * plan.noise_batches * speeds.noise_eval_s)


def test_a_fast_lane_meets_every_target_and_spends_the_rest_on_epochs():
    t = Targets(train_images=45000)
    plan = plan_lane(480, GPU, t)
    assert plan.targets_met
    assert plan.main_pairs >= 5000 and plan.lowvar_pairs == 300 and (plan.noise_pairs, plan.noise_batches) == (50, 20)
    assert plan.epochs >= 20
    assert predicted(plan, GPU, t) <= 0.9 * 480 + 1e-9
    assert plan.total_s == pytest.approx(predicted(plan, GPU, t))


def test_time_past_the_epoch_cap_buys_more_main_pairs_and_fill_off_keeps_the_targets():
    t = Targets(train_images=45000, max_epochs=2)
    plan = plan_lane(480, GPU, t)
    assert plan.epochs == 2 and plan.main_pairs > 5000
    fixed = plan_lane(480, GPU, Targets(train_images=45000, max_epochs=2, fill=False))
    assert fixed.epochs == 2 and fixed.main_pairs == 5000


def test_a_slow_lane_scales_the_evaluation_sets_down_and_keeps_at_least_one_epoch():
    slow = Speeds(train_image_s=1 / 50, monitor_s=2.0, main_pair_s=1.0, lowvar_pair_s=10.0, noise_eval_s=0.1)
    t = Targets(train_images=512)
    plan = plan_lane(90, slow, t)
    assert not plan.targets_met and plan.epochs >= 1
    assert 2 <= plan.main_pairs < 5000 and 1 <= plan.lowvar_pairs < 300
    assert plan.noise_pairs >= 2 and plan.noise_batches >= 2
    assert predicted(plan, slow, t) <= 0.9 * 90 + 1e-9


def test_a_budget_below_one_epoch_and_the_minimal_sets_is_refused_with_the_time_needed():
    slow = Speeds(train_image_s=1.0, monitor_s=1.0, main_pair_s=1.0, lowvar_pair_s=1.0, noise_eval_s=1.0)
    with pytest.raises(BudgetTooSmall, match=r"at least \d+ s"):
        plan_lane(30, slow, Targets(train_images=512))


def test_main_cost_counts_the_repeats_of_every_block():
    assert main_cost(100, 100, 0.15, 1.0) == 115
    assert main_cost(250, 100, 0.15, 1.0) == 2 * 115 + 50 + 8
    assert main_cost(2, 100, 0.15, 1.0) == 3


def test_bad_speeds_and_targets_are_named():
    with pytest.raises(ValueError, match="main_pair_s"):
        Speeds(train_image_s=1, monitor_s=1, main_pair_s=math.nan, lowvar_pair_s=1, noise_eval_s=1)
    with pytest.raises(ValueError, match="noise set"):
        Targets(train_images=10, noise_pairs=1)


def test_fill_buys_the_most_main_pairs_the_budget_holds_even_at_microseconds_per_pair():
    # about 3.9e9 pairs estimated, 2.25e9 fit (each block of 1 repeats its pair): found at once
    speeds = Speeds(train_image_s=0.005, monitor_s=0.0, main_pair_s=1e-6, lowvar_pair_s=1e-6, noise_eval_s=1e-6)
    t = Targets(train_images=1, main_pairs=2, lowvar_pairs=1, max_epochs=1, main_block=1, fill=True)
    plan = plan_lane(5000.0, speeds, t)
    avail = t.safety * 5000.0
    rest = plan.train_s + plan.lowvar_s + plan.noise_s
    assert plan.total_s <= avail and plan.main_pairs > 2
    assert main_cost(plan.main_pairs + 1, plan.main_block, t.repeat_share, speeds.main_pair_s) + rest > avail


rate = st.floats(min_value=1e-6, max_value=5.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(seconds=st.floats(min_value=1.0, max_value=5000.0), train=rate, mon=st.floats(0, 5), main=rate, lowvar=rate,
       noise=rate, images=st.integers(1, 50000), main_pairs=st.integers(2, 20000), lowvar_pairs=st.integers(1, 1000),
       max_epochs=st.integers(1, 300), block=st.integers(1, 200), fill=st.booleans())
def test_the_plan_never_exceeds_the_budget_on_the_measured_speed(seconds, train, mon, main, lowvar, noise, images,
                                                                 main_pairs, lowvar_pairs, max_epochs, block, fill):
    speeds = Speeds(train_image_s=train / 1000, monitor_s=mon, main_pair_s=main, lowvar_pair_s=lowvar, noise_eval_s=noise)
    t = Targets(train_images=images, main_pairs=main_pairs, lowvar_pairs=lowvar_pairs, max_epochs=max_epochs,
                main_block=block, fill=fill)
    try:
        plan = plan_lane(seconds, speeds, t)
    except BudgetTooSmall:
        return
    assert plan.epochs >= 1 and plan.main_pairs >= 2 and plan.lowvar_pairs >= 1
    assert predicted(plan, speeds, t) <= t.safety * seconds * (1 + 1e-9)
    assert plan.total_s <= seconds
