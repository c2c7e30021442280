"""The run engine every kind of run shares (continual-learning sequences, the multi-task network).

- :mod:`.config`: the frozen, hashed configuration base and ``--set`` parsing (profile tables: :mod:`lungcl.profiles`)
- :mod:`.folder`: the results folder, the record base, checkpoints and the per-run lock
- :mod:`.engine`: one run (loaded when finished and current, else computed once) and the store preparation
- :mod:`.executor`: many runs, here, in local processes or on Dask
- :mod:`.determinism`: the torch state a run sets
"""
