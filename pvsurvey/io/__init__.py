"""Readers and writers: every file pvsurvey touches goes through this package."""
