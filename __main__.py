"""Pulumi entry point of the gated-release project; the program lives in infra/program.py."""

from infra.program import run

run()
