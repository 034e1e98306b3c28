"""Labelers (simulated annotators, verifiers) and per-category routing."""
