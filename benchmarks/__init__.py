"""Benchmarks: scripts that print figures measured side by side; run them as modules from the repository root (``python -m benchmarks.run``)."""
