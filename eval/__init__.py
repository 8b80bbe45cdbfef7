"""Evaluation sets, ``run_all`` and the studies behind the shipped settings; run them as modules from the repository root (``python -m eval.run_all``)."""
