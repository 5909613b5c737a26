"""Roadmap Agent's browser UI: server-rendered pages that talk to the API only through
``roadmap_client``."""
