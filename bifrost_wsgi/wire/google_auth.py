"""OAuth2 access tokens for Vertex AI, cached per credential and refreshed before they expire.

Where the token comes from, first match wins:

1. ``vertex_key_config.auth_credentials``: a service-account JSON. A JWT assertion signed with its
   private key (RS256) is exchanged at the JSON's own ``token_uri`` (RFC 7523 jwt-bearer grant). RS256 needs
   the optional ``google-auth`` package (``pip install 'bifrost-wsgi[vertex]'``); only its signer is used.
2. the key's ``value``: an access token obtained elsewhere, sent as it is (never refreshed).
3. neither: the GCE/GKE/Cloud Run metadata server (``GCE_METADATA_HOST`` overrides its host, as in
   Google's own libraries).

Tokens are kept until five minutes before they expire. One lock per credential makes concurrent requests
wait for a single refresh instead of each fetching a token. Tokens and private keys never appear in a log
line or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass

from .. import transport
from ..errors import GatewayError, ProviderAuthFailed, UpstreamConnectError
from ..redaction import SECRETS

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # the longest Google accepts
REFRESH_MARGIN = 300.0
DEFAULT_METADATA_HOST = "metadata.google.internal"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
INSTALL_HINT = "pip install 'bifrost-wsgi[vertex]'"


class CredentialError(UpstreamConnectError):
    """No access token could be had (502): bad credentials file, token endpoint or metadata server down."""


@dataclass(slots=True)
class _Entry:
    lock: threading.Lock
    token: str = ""
    expires: float = 0.0  # time.monotonic() deadline


_entries: dict[str, _Entry] = {}
_entries_lock = threading.Lock()


def access_token(key) -> str:
    """A bearer token for the Vertex key (``providers.base.Key``); fetched or refreshed when needed."""
    vertex = key.settings or {}
    credentials = vertex.get("auth_credentials") or ""
    if credentials:
        cache_key = "sa:" + hashlib.sha256(credentials.encode()).hexdigest()
        return _cached(cache_key, lambda: _service_account_token(credentials))
    if key.value:
        return key.value
    host = metadata_host()
    return _cached("metadata:" + host, lambda: _metadata_token(host))


def metadata_host() -> str:
    return os.environ.get("GCE_METADATA_HOST") or DEFAULT_METADATA_HOST


def clear_cache() -> None:
    """Forget every cached token (tests, credential rotation)."""
    with _entries_lock:
        _entries.clear()


def _cached(cache_key: str, fetch) -> str:
    with _entries_lock:
        entry = _entries.get(cache_key)
        if entry is None:
            entry = _entries[cache_key] = _Entry(threading.Lock())
    with entry.lock:
        now = time.monotonic()
        if entry.token and now < entry.expires - REFRESH_MARGIN:
            return entry.token
        try:
            token, lifetime = fetch()
        except CredentialError:
            # a refresh that fails inside the margin keeps the old token while it is still valid
            if entry.token and now < entry.expires:
                return entry.token
            raise
        SECRETS.add(token)
        entry.token, entry.expires = token, time.monotonic() + lifetime
        return token


# --- service account ------------------------------------------------------------------------------------


def _service_account_token(credentials: str) -> tuple[str, float]:
    try:
        info = json.loads(credentials)
    except ValueError:
        raise CredentialError("vertex auth_credentials is not valid JSON (expected a service-account key file)") from None
    if not isinstance(info, dict):
        raise CredentialError("vertex auth_credentials is not a service-account key file")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise CredentialError(f"vertex auth_credentials lacks {', '.join(missing)}")
    assertion = signed_assertion(info, now=int(time.time()))
    status, body = _exchange(info["token_uri"], {"grant_type": JWT_BEARER, "assertion": assertion})
    return _token_from(status, body, source="token endpoint")


def signed_assertion(info: dict, *, now: int) -> str:
    """The RS256 JWT a service account presents at its ``token_uri``."""
    try:
        from google.auth import crypt
    except ImportError:
        raise CredentialError(f"vertex service-account credentials need google-auth: {INSTALL_HINT}") from None
    header = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = info["private_key_id"]
    claims = {"iss": info["client_email"], "scope": SCOPE, "aud": info["token_uri"], "iat": now,
              "exp": now + ASSERTION_LIFETIME}
    signing_input = f"{_b64url(_compact(header))}.{_b64url(_compact(claims))}"
    try:
        signer = crypt.RSASigner.from_string(info["private_key"], info.get("private_key_id"))
    except Exception:  # noqa: BLE001 - any unreadable key (ValueError, UnsupportedAlgorithm, …)
        # the library's message may quote the key material: say only what is wrong
        raise CredentialError("vertex auth_credentials has a private_key that cannot be read") from None
    signature = signer.sign(signing_input.encode())
    return f"{signing_input}.{_b64url(signature)}"


def _exchange(url: str, form: dict) -> tuple[int, bytes]:
    try:
        return transport.post_form(url, form)
    except UpstreamConnectError as exc:
        raise CredentialError(f"could not reach the vertex token endpoint: {exc.message}") from None


def _compact(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- metadata server ------------------------------------------------------------------------------------


def _metadata_token(host: str) -> tuple[str, float]:
    url = f"http://{host}{METADATA_TOKEN_PATH}"
    try:
        status, body = transport.get(url, headers={"Metadata-Flavor": "Google"}, timeout=3.0)
    except GatewayError as exc:  # connect errors and timeouts alike: not running on Google Cloud
        raise CredentialError("vertex has no auth_credentials and the GCE metadata server is unreachable "
                              f"({exc.message}); set vertex_key_config.auth_credentials") from None
    return _token_from(status, body, source="GCE metadata server")


# --- token answers --------------------------------------------------------------------------------------


def _token_from(status: int, body: bytes, *, source: str) -> tuple[str, float]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status >= 400 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        detail = ""
        if isinstance(data, dict):
            # OAuth error fields describe the problem and never carry secrets
            detail = ": " + ": ".join(str(data[k]) for k in ("error", "error_description") if data.get(k))
            detail = "" if detail == ": " else detail
        if 400 <= status < 500:
            raise ProviderAuthFailed(f"vertex {source} refused the credentials (status {status}){detail}",
                                     status=401)
        raise CredentialError(f"vertex {source} gave no access token (status {status}){detail}")
    lifetime = data.get("expires_in")
    lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 3600.0
    return data["access_token"], lifetime
