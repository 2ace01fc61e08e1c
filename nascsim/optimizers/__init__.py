"""General-purpose optimizers on NASC's problem (:class:`nascsim.Problem`), as search methods of
the registry: ``optuna-tpe`` and ``optuna-random`` (:mod:`.optuna_sampler`, optuna an optional
extra: ``pip install 'nascsim[optuna]'``)."""
