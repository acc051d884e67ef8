"""Hyperparameter search and benchmarking harness for audio + text emotion recognition on IEMOCAP."""

__version__ = "0.1.0"
