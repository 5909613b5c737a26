"""Benchmarks of Roadmap Agent against the claims of the system it replaces (see README.md)."""
