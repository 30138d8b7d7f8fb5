"""Reference data shipped with the project (regions)."""
