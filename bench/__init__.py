"""Benchmarks: commands that print a table and write JSON (`make bench` runs `python -m bench`).

`python -m bench` times the migration runner against psql and dbmate on a generated corpus;
see `bench/cli.py` (`python -m bench --help`) and docs/bench.md.
"""
