"""roadmap_api."""
