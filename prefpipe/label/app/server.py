"""The human annotation web app: sign in with a token, label pairs, watch agreement (admins).

Run: python -m prefpipe.label.app.server --store store/prefpipe.duckdb [--port 8765] [--rubric rubric.md]

Server-rendered Jinja pages (autoescaped; responses are untrusted text), one small static script
for keyboard shortcuts, and a JSON API (Bearer token) for scripts. The app never holds a DuckDB
connection between requests: each request opens the store, does one short transaction and closes
it, so pipeline stages in other processes can take DuckDB's file lock in between (both sides retry
a held lock with backoff; a request that waits longer than `lock_timeout_s` gets 503).
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2
import markdown_it
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from prefpipe.label import annotation
from prefpipe.label.app import security
from prefpipe.store import Store, StoreLocked

log = logging.getLogger("prefpipe.label.app")
TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s]*")
HERE = Path(__file__).resolve().parent
DEFAULT_RUBRIC = """\
Compare the two responses to the prompt and pick the better one.

- **Correct first**: a right answer beats a wrong one, however well written.
- **Then helpful and honest**: it answers what was asked and admits what it does not know.
- **Then concise**: no filler; a longer answer is not better for being longer.
- **Tie** when both are equally good; **both bad** when neither is acceptable.
- A response marked *cut off* stopped at the length limit; judge what is there.

Keys: `1`/`A` A is better, `2`/`B` B is better, `3`/`T` tie, `4`/`X` both bad.
"""


@dataclass(frozen=True)
class User:
    annotator_id: str
    is_admin: bool
    session: str | None = None  # the cookie value, for the CSRF token; None for API callers


class LoginRequired(Exception):
    """A page was asked for without a valid session: the handler redirects to /login."""


class ApiSubmit(BaseModel):
    task_id: str
    choice: str  # 'first' | 'second' | 'tie' | 'both_bad', as shown
    rationale: str | None = None


def render_rubric(text: str) -> Markup:
    """Markdown -> HTML with raw HTML disabled (escaped) and unsafe link schemes refused."""
    return Markup(markdown_it.MarkdownIt("commonmark", {"html": False}).render(text))


def create_app(store_path: str, rubric_path: str | None = None, lock_timeout_s: float = 30,
               allowed_hosts: list[str] | None = None, metrics_path: str | None = None) -> FastAPI:
    """The app on one DuckDB store. `allowed_hosts` (default 127.0.0.1 and localhost) guards
    against DNS rebinding; `metrics_path` (default metrics/label.json) is shown on /admin if present."""
    store = Store(store_path, lock_timeout_s=lock_timeout_s)
    secret = security.load_secret(store_path)
    rubric = render_rubric(Path(rubric_path).read_text() if rubric_path else DEFAULT_RUBRIC)
    metrics_file = Path(metrics_path or "metrics/label.json")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    templates = Jinja2Templates(env=env)

    app = FastAPI(title="prefpipe annotation", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost", "[::1]"])
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in security.SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": None, **context}, status_code=status_code)

    def error(request: Request, status_code: int, message: str, user: User | None = None) -> HTMLResponse:
        return page(request, "error.html", status_code, status=status_code, message=message, user=user,
                    csrf=security.csrf_token(secret, user.session) if user and user.session else "")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StoreLocked)
    async def store_busy(request: Request, exc: StoreLocked) -> Response:
        log.warning("store busy: %s", exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "the store is busy; retry"}, 503, headers={"Retry-After": "2"})
        return HTMLResponse("The store is busy (a pipeline stage holds it); retry in a moment.", 503,
                            headers={"Retry-After": "2"})

    def session_user(request: Request) -> User | None:
        value = request.cookies.get(security.SESSION_COOKIE)
        found = security.read_session(secret, value)
        if found is None:
            return None
        annotator_id, fingerprint = found
        current = annotation.annotator_token_hash(store, annotator_id)
        if current is None or not hmac.compare_digest(current[0][:16], fingerprint):
            return None  # the token was rotated or the annotator removed
        return User(annotator_id, current[1], value)

    def page_user(request: Request) -> User:
        user = session_user(request)
        if user is None:
            raise LoginRequired()
        return user

    def api_user(request: Request) -> User:
        """Bearer-token auth; resolved before the body is parsed, so a stranger always gets 401."""
        found = annotation.annotator_for_token(
            store, security.bearer_token(request.headers.get("authorization")))
        if found is None:
            raise HTTPException(401, "send Authorization: Bearer <your token>",
                                headers={"WWW-Authenticate": "Bearer"})
        return User(*found)

    def own_origin(request: Request) -> str:
        return f"{request.url.scheme}://{request.headers.get('host', '')}"

    def signed_in(annotator_id: str) -> RedirectResponse:
        token_sha256, _ = annotation.annotator_token_hash(store, annotator_id)
        response = RedirectResponse("/label", status_code=303)  # the token leaves the URL here
        session = security.make_session(secret, annotator_id, token_sha256)
        response.set_cookie(security.SESSION_COOKIE, session, max_age=security.SESSION_MAX_AGE_S,
                            httponly=True, samesite="strict", path="/")
        return response

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/label", status_code=303)

    @app.get("/login")
    def login_page(request: Request, token: str | None = None) -> Response:
        if token is None:
            return page(request, "login.html", error=None, token="")
        found = annotation.annotator_for_token(store, token)
        if found is None:
            return page(request, "login.html", 401, error="That token is not valid.", token="")
        if request.headers.get("sec-fetch-site") == "cross-site":
            # a link on another site must not silently sign the browser in (login CSRF): confirm
            return page(request, "login.html", error=None, token=token)
        return signed_in(found[0])

    @app.post("/login")
    def login_post(request: Request, token: str | None = Form(None)) -> Response:
        if not security.same_origin(request.headers, own_origin(request)):
            return error(request, 403, "Cross-site sign-in refused.")
        found = annotation.annotator_for_token(store, token)
        if found is None:
            return page(request, "login.html", 401, error="That token is not valid.", token="")
        return signed_in(found[0])

    @app.post("/logout")
    def logout(request: Request, csrf: str | None = Form(None), user: User = Depends(page_user)) -> Response:
        if not (security.same_origin(request.headers, own_origin(request))
                and security.csrf_ok(secret, user.session, csrf)):
            return error(request, 403, "Cross-site request refused.", user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/label")
    def label_page(request: Request, user: User = Depends(page_user)) -> Response:
        task = annotation.next_task(store, user.annotator_id)
        done, total = (task.done, task.total) if task else annotation.queue_progress(store, user.annotator_id)
        gold = annotation.gold_accuracy(store).get(user.annotator_id) if user.is_admin else None
        return page(request, "label.html", user=user, task=task, done=done, total=total, rubric=rubric,
                    gold=gold, csrf=security.csrf_token(secret, user.session))

    @app.post("/label/submit")
    def label_submit(request: Request, task_id: str | None = Form(None), choice: str | None = Form(None),
                     rationale: str | None = Form(None), csrf: str | None = Form(None),
                     user: User = Depends(page_user)) -> Response:
        if not security.same_origin(request.headers, own_origin(request)):
            return error(request, 403, "Cross-site post refused (Origin is not this app).", user)
        if not security.csrf_ok(secret, user.session, csrf):
            return error(request, 403, "Missing or wrong form token; reload the page and try again.", user)
        try:
            annotation.submit(store, user.annotator_id, task_id or "", choice or "", rationale)
        except (LookupError, PermissionError):
            return error(request, 404, "No such task in your queue.", user)
        except ValueError as err:
            return error(request, 400, str(err), user)
        return RedirectResponse("/label", status_code=303)

    @app.get("/admin")
    def admin_page(request: Request, user: User = Depends(page_user)) -> Response:
        if not user.is_admin:
            return error(request, 403, "Admins only.", user)
        return page(request, "admin.html", user=user, csrf=security.csrf_token(secret, user.session),
                    **admin_view(store, metrics_file))

    # The JSON API authenticates every call with the Authorization header and ignores cookies.
    # A browser never attaches that header on its own to a cross-site request (and a cross-site
    # fetch that sets it needs a CORS preflight, which this app does not grant), so a forged
    # request carries no credentials: CSRF tokens are not needed here.
    @app.get("/api/next")
    def api_next(user: User = Depends(api_user)) -> Response:
        task = annotation.next_task(store, user.annotator_id)
        done, total = (task.done, task.total) if task else annotation.queue_progress(store, user.annotator_id)
        return JSONResponse({"task": task_json(task) if task else None, "done": done, "total": total})

    @app.get("/api/task/{task_id}")
    def api_task(task_id: str, user: User = Depends(api_user)) -> Response:
        try:
            task = annotation.get_task(store, user.annotator_id, task_id)
        except (LookupError, PermissionError):  # the same answer: no probing other queues
            return JSONResponse({"detail": "no such task in your queue"}, 404)
        return JSONResponse({"task": task_json(task), "done": task.done, "total": task.total})

    @app.post("/api/submit")
    def api_submit(body: ApiSubmit, user: User = Depends(api_user)) -> Response:
        try:
            label = annotation.submit(store, user.annotator_id, body.task_id, body.choice, body.rationale)
        except (LookupError, PermissionError):
            return JSONResponse({"detail": "no such task in your queue"}, 404)
        except ValueError as err:
            return JSONResponse({"detail": str(err)}, 400)
        # the stored answer (the first one on a double submit), in the order the annotator saw
        return JSONResponse({"task_id": body.task_id,
                             "choice": annotation.to_shown_choice(label.choice, label.shown_order)})

    return app


def task_json(task: annotation.TaskView) -> dict:
    """What an annotator may see of a task: no pair id, no a/b mapping, no gold flag."""
    fields = asdict(task)
    fields.pop("pair_id")
    return fields


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def admin_view(store: Store, metrics_file: Path) -> dict:
    """Progress, gold accuracy, agreement (every human label, gold items included) and the majority
    aggregation of the non-gold labels, computed live from the store."""
    from prefpipe.label import agreement  # the label stage's agreement measures

    every = annotation.human_labels(store, include_gold=True)
    units: dict[str, list[str]] = {}
    for label in every:
        units.setdefault(label.pair_id, []).append(label.choice)
    kappas = {key: {"kappa": _number(v["kappa"]), "n": v["n"]}
              for key, v in sorted(agreement.pairwise_kappa(every).items())}
    alpha = _number(agreement.krippendorff_alpha(units))  # None: too few overlapping labels
    aggregated = agreement.aggregate(annotation.human_labels(store))
    metrics = None
    if metrics_file.is_file():
        try:
            metrics = json.dumps(json.loads(metrics_file.read_text()), indent=2, sort_keys=True)
        except (OSError, ValueError) as err:
            metrics = f"{metrics_file}: unreadable ({err})"
    return {"progress": annotation.progress(store), "kappas": kappas, "alpha": alpha,
            "overlapping_pairs": sum(len(v) >= 2 for v in units.values()),
            "aggregate": dict(sorted(Counter(v.choice for v in aggregated.values()).items())),
            "aggregated_pairs": len(aggregated), "metrics": metrics, "metrics_file": str(metrics_file)}


def serve(store_path: str, host: str = "127.0.0.1", port: int = 8765, rubric_path: str | None = None,
          lock_timeout_s: float = 30, allowed_hosts: list[str] | None = None,
          metrics_path: str | None = None, log_level: str = "info") -> None:
    """Run the app with uvicorn until interrupted; loopback only unless `host` says otherwise."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: there is no TLS, so tokens and cookies cross the network in clear; "
                    "put a TLS proxy in front", host)
    app = create_app(store_path, rubric_path, lock_timeout_s,
                     allowed_hosts or ["127.0.0.1", "localhost", "[::1]", host], metrics_path)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False)
    logging.getLogger("uvicorn.access").addFilter(redact_tokens)  # after Config set up logging
    uvicorn.Server(config).run()


def redact_tokens(record: logging.LogRecord) -> bool:
    """Keep sign-in tokens (GET /login?token=...) out of the access log."""
    if isinstance(record.args, tuple):
        record.args = tuple(TOKEN_IN_URL.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                            for a in record.args)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="the DuckDB store file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rubric", default=None, help="a Markdown file of guidelines (default: built in)")
    parser.add_argument("--lock-timeout", type=float, default=30.0)
    parser.add_argument("--allow-host", action="append", default=None, help="extra Host header to accept")
    parser.add_argument("--metrics", default=None, help="the label stage's metrics JSON")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    serve(args.store, args.host, args.port, args.rubric, args.lock_timeout,
          None if args.allow_host is None else ["127.0.0.1", "localhost", args.host, *args.allow_host],
          args.metrics, args.log_level)


if __name__ == "__main__":
    main()
