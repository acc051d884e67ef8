"""The benchmark stage: a study design as one frozen object (``BenchmarkSpec``), run below the CLI.

``python -m harness.benchmark`` runs ``harness.benchmark.__main__``.
"""
