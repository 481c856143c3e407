"""Reproducible training of edge-runtime's own models (not installed with the package)."""
