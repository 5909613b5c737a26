"""roadmap_db."""
