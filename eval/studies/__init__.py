"""Studies behind shipped settings (fusion, floors, answerability, the lead, re-ranking, int8 variants).

Each is run from the repository root as a module, ``python -m eval.studies.<name> --help``, and
imports what it measures from ``rag`` rather than copying it.
"""
