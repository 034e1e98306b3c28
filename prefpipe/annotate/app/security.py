"""Sessions, CSRF tokens, same-origin checks and security headers of the annotation app.

Signing in makes a session: the cookie holds a random value (256 bits from `secrets`, nothing
derived from the annotator or the token) and the store keeps only its SHA-256 in the sessions table
(`store.sessions`), with the token hash it was signed in with and when it expires (12 h). Signing
out deletes the row, so the same cookie stops working at once; re-issuing or revoking the
annotator's token ends every session of the old token. The raw token never appears in the cookie.

Form posts carry a CSRF token derived from the session (HMAC of the cookie value under a secret
kept in a file next to the DuckDB store, created once, mode 0600) and must come from the app's own
origin (Origin, else Referer). The cookie is also SameSite=Strict; each layer alone stops a
cross-site form post.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

SESSION_COOKIE = "prefpipe_session"
SESSION_MAX_AGE_S = 12 * 3600
SESSION_VALUE_MAX_CHARS = 64  # new_session() makes 43
SECURITY_HEADERS = {
    # no inline script or style anywhere: the pages load /static files only
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # 'same-origin' (not 'no-referrer'): browsers then still send a real Origin on our own posts
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def load_secret(store_path: str | Path) -> bytes:
    """The CSRF signing secret in `<store>.app-secret`, created on first use (owner-readable only)."""
    path = Path(f"{store_path}.app-secret")
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return load_secret(store_path)
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
    if len(secret) < 32:
        raise RuntimeError(f"{path}: the app secret is shorter than 32 bytes; delete the file to "
                           "make a new one (open forms then need a reload)")
    return secret


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def new_session() -> str:
    """A fresh session value for the cookie: random, so no one can derive or guess another's."""
    return secrets.token_urlsafe(32)


def session_hash(value: str | None) -> str | None:
    """What the store keys a session by (the SHA-256 of the cookie value); None for no value or
    one no `new_session` could have made."""
    if not value or len(value) > SESSION_VALUE_MAX_CHARS:
        return None
    return hashlib.sha256(value.encode()).hexdigest()


def session_times(now: datetime | None = None) -> tuple[datetime, datetime]:
    """(now, expiry) of a session signed in now, in UTC without a zone, as the store keeps times."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return now, now + timedelta(seconds=SESSION_MAX_AGE_S)


def csrf_token(secret: bytes, session_value: str) -> str:
    """The per-session CSRF token that forms carry."""
    return _sign(secret, "csrf:" + session_value)


def csrf_ok(secret: bytes, session_value: str | None, token: str | None) -> bool:
    if not session_value or not token:
        return False
    return hmac.compare_digest(token, csrf_token(secret, session_value))


def same_origin(headers, own_origin: str) -> bool:
    """True when the request's Origin (or, without one, its Referer) is the app's own origin.

    A request that carries neither is refused: browsers send Origin on every form POST."""
    origin = headers.get("origin")
    if origin is not None:
        return origin == own_origin
    referer = headers.get("referer")
    return referer is not None and (referer == own_origin or referer.startswith(own_origin + "/"))


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
