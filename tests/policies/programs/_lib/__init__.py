"""Shared builder for the small test programs (each program dir picks one variant)."""
