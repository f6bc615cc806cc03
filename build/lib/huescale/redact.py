"""Hide secrets in URLs and URIs before they leave the process (logs, errors, MLflow params, reports).

Two kinds of secrets travel inside URLs:
- credentials in the authority: ``https://user:password@host/...``, ``postgresql://user:pw@db/mlflow``,
  or a bare token ``https://TOKEN@host/...``;
- signatures and tokens in the query string of signed URLs (S3 ``X-Amz-Signature``,
  ``X-Amz-Credential``, ``X-Amz-Security-Token``; GCS ``X-Goog-Signature``; CloudFront
  ``Signature``/``Key-Pair-Id``/``Policy``; Azure SAS ``sig``; ``token``, ``access_token``,
  ``api_key``, ``key``, ``password``, ``secret``, ...).

:func:`redact` replaces them by ``***`` wherever they appear in a text (a bare URL, an error
message, rendered HTML, where ``&`` may be escaped as ``&amp;``). :func:`url_identity` is the
URL without those parts, stable across re-signed URLs: the download cache is keyed by it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameter names whose values are secret (case-insensitive, exact names) ...
SECRET_PARAMS = frozenset({
    "signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "policy", "key-pair-id", "token", "access_token", "id_token", "refresh_token",
    "auth", "authorization", "api_key", "apikey", "api-key", "key", "password", "passwd", "pwd", "secret",
    "client_secret", "awsaccesskeyid", "googleaccessid", "session", "sessionid", "x-api-key",
})
# ... and any parameter whose name contains one of these words.
_SECRET_WORDS = ("signature", "token", "secret", "password", "credential", "apikey", "api_key")

# anchored on the literal "://" (fast on megabytes of HTML with inline base64 images)
_AUTHORITY = re.compile(r"://(?P<userinfo>[^/\s?#'\"<>]+)@")
_QUERY = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s'\"<>]*)")


def is_secret_param(name: str) -> bool:
    """Whether a query parameter named ``name`` carries a secret (see :data:`SECRET_PARAMS`)."""
    n = name.lower()
    return n in SECRET_PARAMS or any(w in n for w in _SECRET_WORDS)


def _userinfo(m: re.Match) -> str:
    user, sep, _ = m["userinfo"].partition(":")
    return f"://{user}:{MASK}@" if sep else f"://{MASK}@"


def _query(m: re.Match) -> str:
    if m["value"] and is_secret_param(m["name"]):
        return f"{m['sep']}{m['name']}={MASK}"
    return m.group(0)


def redact(text: object) -> str:
    """``text`` (a URL, URI or any message containing some) with passwords, tokens and signatures masked.

    ``https://user:pw@host/a.tgz?X-Amz-Signature=abc&v=1`` becomes
    ``https://user:***@host/a.tgz?X-Amz-Signature=***&v=1``. Non-strings are converted with ``str``.
    Text without URLs is returned unchanged.
    """
    s = str(text)
    if "@" in s:
        s = _AUTHORITY.sub(_userinfo, s)
    if "=" in s:
        s = _QUERY.sub(_query, s)
    return s


def url_identity(url: str) -> str:
    """The URL without credentials and without secret query parameters (a stable cache key).

    Two signed URLs of the same object (different signatures or expiry tokens) have the same
    identity; different objects (path or other parameters) do not.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not is_secret_param(k) and k.lower() not in ("expires", "x-amz-expires", "x-amz-date", "se")])
    return urlunsplit((parts.scheme.lower(), netloc.lower(), parts.path, query, ""))
