"""Partition logs on disk: segments, indexes, retention, compaction, recovery."""
