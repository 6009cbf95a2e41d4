"""Benchmarks: skhbnn against plain PyMC scripts of the same models.

Run from the repository root with ``python -m benchmarks [name ...] [--quick]``
(see ``benchmarks/README.md``).  Every benchmark measures its baseline in the
same run and prints the ratio.
"""
