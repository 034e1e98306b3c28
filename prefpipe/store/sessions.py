"""Signed-in browser sessions of the annotation app, and revoking an annotator's access.

Every SQL statement about sessions lives here, behind named methods of `store.sessions`; what a
session value is and how long it lives are the app's rules (`prefpipe.annotate.app.security`).

A row is keyed by the SHA-256 of the random value in the browser's cookie (the value itself is never
stored, so a copy of the store signs no one in) and remembers the token hash it was signed in with.
A lookup matches only an unexpired row whose token hash is still its annotator's, so:
- signing out deletes the row: the same cookie stops working at once;
- re-issuing a token (`prefpipe label annotators add ID` again) ends every session of the old one;
- revoking an annotator replaces their token hash with one no token hashes to and deletes their rows.
Each method is one short transaction, like the rest of the store.
"""
from __future__ import annotations

import secrets
import threading
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefpipe.store.db import Store

REVOKED = "revoked:"  # prefix of a revoked annotator's token hash: a sha256 is 64 hex digits, never this
_WRITES = threading.Lock()  # DuckDB refuses conflicting deletes of concurrent transactions


class Sessions:
    """`store.sessions`: the sessions table of one store."""

    def __init__(self, store: Store):
        self.store = store

    def create(self, session_sha256: str, token_sha256: str, now: datetime,
               expires_at: datetime) -> str | None:
        """Record a session for the annotator holding `token_sha256` and return their id; None (and
        nothing written) when no annotator holds it. Rows that have expired, or whose token was
        re-issued or revoked, are deleted in the same transaction."""
        with _WRITES, self.store.transaction() as con:
            con.execute("DELETE FROM sessions WHERE expires_at <= ? OR NOT EXISTS (SELECT 1 FROM "
                        "annotators a WHERE a.annotator_id = sessions.annotator_id "
                        "AND a.token_sha256 = sessions.token_sha256)", [now])
            found = con.execute("SELECT annotator_id FROM annotators WHERE token_sha256 = ?",
                                [token_sha256]).fetchall()
            if not found:
                return None
            con.execute("INSERT INTO sessions (session_sha256, annotator_id, token_sha256, created_at, "
                        "expires_at) VALUES (?, ?, ?, ?, ?)",
                        [session_sha256, found[0][0], token_sha256, now, expires_at])
            return found[0][0]

    def lookup(self, session_sha256: str, now: datetime) -> tuple[str, bool] | None:
        """(annotator_id, is_admin) of a live session: unexpired, and signed in with the token its
        annotator holds now; else None."""
        found = self.store.query(
            "SELECT a.annotator_id, a.is_admin FROM sessions s JOIN annotators a "
            "ON a.annotator_id = s.annotator_id AND a.token_sha256 = s.token_sha256 "
            "WHERE s.session_sha256 = ? AND s.expires_at > ?", [session_sha256, now]).to_pylist()
        return (found[0]["annotator_id"], bool(found[0]["is_admin"])) if found else None

    def delete(self, session_sha256: str) -> bool:
        """End one session (sign-out); False when there was no such row."""
        with _WRITES, self.store.transaction() as con:
            return bool(con.execute("DELETE FROM sessions WHERE session_sha256 = ? RETURNING 1",
                                    [session_sha256]).fetchall())

    def revoke(self, annotator_id: str) -> int | None:
        """Make the annotator's token unusable and end their sessions, in one transaction; the number
        of session rows deleted, or None when there is no such annotator (nothing changes).
        Re-adding the annotator issues a new token."""
        unusable = REVOKED + secrets.token_hex(16)  # unique, as the column requires
        with _WRITES, self.store.transaction() as con:
            if not con.execute("UPDATE annotators SET token_sha256 = ? WHERE annotator_id = ? "
                               "RETURNING 1", [unusable, annotator_id]).fetchall():
                return None
            return len(con.execute("DELETE FROM sessions WHERE annotator_id = ? RETURNING 1",
                                   [annotator_id]).fetchall())

    def count(self, annotator_id: str | None = None) -> int:
        """Session rows (of one annotator, or all), live or not yet purged."""
        where, params = ("WHERE annotator_id = ?", [annotator_id]) if annotator_id else ("", [])
        return int(self.store.query(f"SELECT count(*) AS n FROM sessions {where}", params)["n"][0].as_py())
