"""The human annotation web app: sign in with a token, label pairs, watch agreement (admins).

Run: `prefpipe label serve [--port 8765] [--rubric rubric.md]` (flows/label_cli.py).

Server-rendered Jinja pages (autoescaped; responses are untrusted text), one small static script
for keyboard shortcuts, and a JSON API (Bearer token) for scripts. The routes live by concern in
`auth` (sign in/out), `pages` (labeling), `admin` and `api`; they share an `AppState`
(`state`). The app never holds a DuckDB connection between requests: each request opens the
store, does one short transaction and closes it, so pipeline stages in other processes can take
DuckDB's file lock in between (both sides retry a held lock with backoff; a request that waits
longer than `lock_timeout_s` gets 503).

Credentials come before bodies: a route reads a request body only once the session or token has
checked out (`state`), and `limits.BodyLimit` stops any body at `max_body_bytes` (1 MB) while it
is read, with 413.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import jinja2
import markdown_it
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.middleware.trustedhost import TrustedHostMiddleware

from prefpipe.annotate.app import admin, api, auth, pages, security
from prefpipe.annotate.app.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit, BodyTooLarge
from prefpipe.annotate.app.state import AppState, LoginRequired
from prefpipe.store import Store, StoreLocked

log = logging.getLogger("prefpipe.annotate.app")
TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s]*")
HERE = Path(__file__).resolve().parent
LOOPBACK = ["127.0.0.1", "localhost", "[::1]"]
DEFAULT_RUBRIC = """\
Compare the two responses to the prompt and pick the better one.

- **Correct first**: a right answer beats a wrong one, however well written.
- **Then helpful and honest**: it answers what was asked and admits what it does not know.
- **Then concise**: no filler; a longer answer is not better for being longer.
- **Tie** when both are equally good; **both bad** when neither is acceptable.
- A response marked *cut off* stopped at the length limit; judge what is there.

Keys: `1`/`A` A is better, `2`/`B` B is better, `3`/`T` tie, `4`/`X` both bad.
"""


def render_rubric(text: str) -> Markup:
    """Markdown -> HTML with raw HTML disabled (escaped) and unsafe link schemes refused."""
    return Markup(markdown_it.MarkdownIt("commonmark", {"html": False}).render(text))


def create_app(store_path: str, rubric_path: str | None = None, lock_timeout_s: float = 30,
               allowed_hosts: list[str] | None = None, metrics_path: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The app on one DuckDB store. `allowed_hosts` (default 127.0.0.1 and localhost) guards
    against DNS rebinding; `metrics_path` (default metrics/label.json) is shown on /admin if present;
    a request body over `max_body_bytes` gets 413."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    state = AppState(store=Store(store_path, lock_timeout_s=lock_timeout_s),
                     secret=security.load_secret(store_path),
                     rubric=render_rubric(Path(rubric_path).read_text() if rubric_path else DEFAULT_RUBRIC),
                     metrics_file=Path(metrics_path or "metrics/label.json"),
                     templates=Jinja2Templates(env=env))

    app = FastAPI(title="prefpipe annotation", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.annotate = state
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in security.SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, 413)
        return state.error(request, 413, f"The {exc.detail}.")

    @app.exception_handler(StoreLocked)
    async def store_busy(request: Request, exc: StoreLocked) -> Response:
        log.warning("store busy: %s", exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "the store is busy; retry"}, 503, headers={"Retry-After": "2"})
        return HTMLResponse("The store is busy (a pipeline stage holds it); retry in a moment.", 503,
                            headers={"Retry-After": "2"})

    for router in (auth.router, pages.router, admin.router, api.router):
        app.include_router(router)
    return app


def serve(store_path: str, host: str = "127.0.0.1", port: int = 8765, rubric_path: str | None = None,
          lock_timeout_s: float = 30, allowed_hosts: list[str] | None = None,
          metrics_path: str | None = None, log_level: str = "info",
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Run the app with uvicorn until interrupted; loopback only unless `host` says otherwise."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: there is no TLS, so tokens and cookies cross the network in clear; "
                    "put a TLS proxy in front", host)
    app = create_app(store_path, rubric_path, lock_timeout_s, allowed_hosts or [*LOOPBACK, host],
                     metrics_path, max_body_bytes)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False)
    logging.getLogger("uvicorn.access").addFilter(redact_tokens)  # after Config set up logging
    uvicorn.Server(config).run()


def redact_tokens(record: logging.LogRecord) -> bool:
    """Keep sign-in tokens (GET /login?token=...) out of the access log."""
    if isinstance(record.args, tuple):
        record.args = tuple(TOKEN_IN_URL.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                            for a in record.args)
    return True
