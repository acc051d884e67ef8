"""The benchmark stage: a study design as one frozen object, run below the CLI.

- ``spec``: ``RunOptions`` (what a search and a benchmark share) and ``BenchmarkSpec`` (pairs or a grid,
  budget presets, seeds, selection rule), built once from the command line and checked there.
- ``plan``: before Ray starts, the corpus read, the storage checked, each pair's run planned and locked.
- ``stage``: ``execute`` (one Ray Tune experiment), ``final_stage`` (one pair's selection and seeded final
  stage), ``run_benchmark`` (every pair's search, then every final stage).
- ``audit``: the label-permutation leak probe (``harness audit``).

``python -m harness.benchmark`` runs ``harness.benchmark.__main__``.
"""
