"""Admin sessions from ``governance.auth_config``: login with a password checked against a scrypt hash
(made at start, the plain password is not kept), a random token whose SHA-256 is stored (shared by every
worker through the store), presented as the HttpOnly cookie ``token`` or ``Authorization: Bearer``."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from http.cookies import SimpleCookie

from .settings import AdminAuth
from .store import StoreUnavailable

SESSION_S = 30 * 86400
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("latin-1", "replace")).hexdigest()


def presented_token(environ) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    cookie = SimpleCookie()
    try:
        cookie.load(environ.get("HTTP_COOKIE", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no session, not an error
        return ""
    morsel = cookie.get("token")
    return morsel.value if morsel is not None else ""


class Sessions:
    def __init__(self, auth: AdminAuth, store) -> None:
        self.enabled = auth.is_enabled
        self.username = auth.admin_username
        self._salt = os.urandom(16)
        self._hash = _hash_password(auth.admin_password, self._salt) if auth.is_enabled else b""
        self.store = store
        self._local: dict[str, float] = {}  # used only when there is no store

    def login(self, username: str, password: str) -> str | None:
        """A new session token, or None for wrong credentials (both compared in constant time)."""
        user_ok = hmac.compare_digest(username.encode("utf-8"), self.username.encode("utf-8"))
        pass_ok = hmac.compare_digest(_hash_password(password, self._salt), self._hash)
        if not (user_ok and pass_ok):
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()
        if self.store is not None:
            self.store.add_session(_token_hash(token), now + SESSION_S, now)
        else:
            self._local[_token_hash(token)] = now + SESSION_S
        return token

    def valid(self, token: str) -> bool:
        if not token:
            return False
        now = time.time()
        if self.store is None:
            return self._local.get(_token_hash(token), 0) > now
        try:
            return self.store.session_valid(_token_hash(token), now)
        except StoreUnavailable:
            return False

    def logout(self, token: str) -> None:
        if not token:
            return
        self._local.pop(_token_hash(token), None)
        if self.store is not None:
            self.store.drop_session(_token_hash(token))
