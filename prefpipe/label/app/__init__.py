"""The human annotation web app (FastAPI + Jinja): `create_app` and `serve` in `server`."""
