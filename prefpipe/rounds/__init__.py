"""Rounds: each run of the pipeline is a round that samples from the last published policy, labels
the new pairs, retrains on the preferences so far and publishes what passes the gates
(docs/rounds.md). This package holds the decisions; the store's registry keeps the record."""
