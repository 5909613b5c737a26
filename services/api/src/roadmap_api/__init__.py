"""Roadmap Agent HTTP API (FastAPI): auth, roadmap jobs, progress stream, content, admin."""

__version__ = "0.1.0"
