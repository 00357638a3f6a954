"""Segments: the saved list, and the builder with its live reach estimate."""
