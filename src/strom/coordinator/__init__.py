"""Coordinators: state machines persisted through internal topics (groups, transactions)."""
