"""Audience: search people, read and change one profile, import files of profiles or events."""
