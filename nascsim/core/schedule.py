"""The paper's schedule: how many θ updates a search makes by default.

NASC follows ASNG-NAS (Akimoto et al. 2019), which splits CIFAR-10's 50,000 training images in
halves, one for the weights and one (25,000 images) for θ, with minibatches of 64: one θ update
per minibatch gives ceil(25,000 / 64) = 391 steps per epoch. The paper's 90 epochs of
distribution updates are then 90 x 391 = 35,190 steps (``SearchConfig.steps = None``).
"""

from __future__ import annotations

import math

PAPER_EPOCHS = 90
THETA_IMAGES = 25_000
THETA_BATCH = 64
STEPS_PER_EPOCH = math.ceil(THETA_IMAGES / THETA_BATCH)  # 391
DEFAULT_STEPS = PAPER_EPOCHS * STEPS_PER_EPOCH  # 35,190
