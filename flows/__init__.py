"""Prefect flows and the `prefpipe` command; the only layer that imports Prefect."""
