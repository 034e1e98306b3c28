"""Sessions, CSRF tokens, same-origin checks and security headers of the annotation app.

A session cookie holds `annotator_id.issued_at.fingerprint.signature` signed with HMAC-SHA256 under
a secret kept in a file next to the DuckDB store (created once, mode 0600), so sessions survive a
restart. The fingerprint is a prefix of the annotator's token hash: rotating the token (re-adding
the annotator) ends every old session. The raw token never appears in the cookie.

Form posts carry a CSRF token derived from the session (HMAC of the cookie value: the
synchroniser-token pattern without server state) and must come from the app's own origin
(Origin, else Referer). The cookie is also SameSite=Strict; each layer alone stops a cross-site
form post.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

SESSION_COOKIE = "prefpipe_session"
SESSION_MAX_AGE_S = 12 * 3600
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
    """The signing secret in `<store>.app-secret`, created on first use (readable by the owner only)."""
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
                           "make a new one (this signs everyone out)")
    return secret


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def make_session(secret: bytes, annotator_id: str, token_sha256: str, now: float | None = None) -> str:
    body = f"{annotator_id}.{int(now if now is not None else time.time())}.{token_sha256[:16]}"
    return f"{body}.{_sign(secret, 'session:' + body)}"


def read_session(secret: bytes, value: str | None, now: float | None = None) -> tuple[str, str] | None:
    """(annotator_id, token fingerprint) of a well-signed, unexpired session value, else None.

    The caller checks the fingerprint against the annotator's current token hash."""
    if not value or len(value) > 300:
        return None
    parts = value.rsplit(".", 3)
    if len(parts) != 4:
        return None
    annotator_id, issued, fingerprint, signature = parts
    body = f"{annotator_id}.{issued}.{fingerprint}"
    if not hmac.compare_digest(signature, _sign(secret, "session:" + body)):
        return None
    age = (now if now is not None else time.time()) - int(issued)
    if not 0 <= age <= SESSION_MAX_AGE_S:
        return None
    return annotator_id, fingerprint


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
