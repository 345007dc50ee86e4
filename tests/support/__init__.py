"""Helpers shared by the test suites (real processes, never mocks)."""
