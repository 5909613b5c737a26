"""Exceptions raised by the dev servers. Messages are one line and say what to do."""

from __future__ import annotations


class DevServerError(RuntimeError):
    """Base class: a dev/test server could not be provided."""


class BinaryNotFoundError(DevServerError):
    """The server binary shipped inside a Python package is missing."""


class DataDirNotAccessibleError(DevServerError):
    """The unprivileged user that runs the server cannot reach the data directory."""


class StaleDataDirError(DevServerError):
    """The data directory was created by another PostgreSQL major version (or is broken)."""


class ServerStartError(DevServerError):
    """The server process exited or did not become ready in time."""


class PortInUseError(ServerStartError):
    """The server could not bind its TCP port (someone else took it)."""
