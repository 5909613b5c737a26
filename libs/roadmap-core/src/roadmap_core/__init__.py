"""roadmap_core."""
