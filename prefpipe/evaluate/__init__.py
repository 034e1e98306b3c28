"""Evaluation: win rates, KL, reward ranking, reports."""
