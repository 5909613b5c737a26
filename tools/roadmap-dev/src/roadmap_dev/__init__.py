"""roadmap_dev."""
