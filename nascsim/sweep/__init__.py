"""Sweeps: grids of searches (:mod:`.grid`), their result store (:mod:`.store`), executors
(:mod:`.run`), summaries (:mod:`.summary`) and plots (:mod:`.plots`)."""
