"""Checking answers: math answers (sympy), untrusted code run against tests in a sandbox, and the
verifier rewards built on them. Used by labeling (the verifier labeler) and by GRPO; imports
neither."""
