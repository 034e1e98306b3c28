"""The human annotation web app (FastAPI + Jinja): `create_app` and `serve` in `server`, the routes
by concern in `auth`, `pages`, `admin` and `api`, sessions and CSRF in `security`, the
request-body limit in `limits`."""
