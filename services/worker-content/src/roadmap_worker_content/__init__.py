"""roadmap_worker_content."""
