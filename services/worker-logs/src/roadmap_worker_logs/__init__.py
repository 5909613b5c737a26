"""roadmap_worker_logs."""
