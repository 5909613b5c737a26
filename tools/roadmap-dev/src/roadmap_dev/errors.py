"""The one error type the CLI turns into a one-line message (no traceback)."""

from __future__ import annotations


class RoadmapError(Exception):
    """A failure the user can fix; the message says what to do."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PortInUseError(RoadmapError):
    """A port the stack needs is taken."""


class StaleDataError(RoadmapError):
    """`.roadmap/` was written by another version of the tooling."""


class MissingToolError(RoadmapError):
    """A package, binary or `uv` itself is not installed."""


class StackFailedError(RoadmapError):
    """A child process exited on its own, or did not become ready."""
