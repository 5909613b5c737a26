"""roadmap_devservers."""
