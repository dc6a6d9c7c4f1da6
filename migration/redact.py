"""Keep passwords out of every line the runner prints, logs, records or writes."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
# SQL that carries a password literal: ALTER ROLE/CREATE USER ... PASSWORD '...', as seen in
# a blocking session's query text.
_SQL_PASSWORD = re.compile(r"(?P<head>\bPASSWORD\s+)(?P<pw>E?'(?:[^']|'')*'?)", re.I)
MASK = "***"
_SHORT = 6


def password_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        pw = urlsplit(url).password
    except ValueError:
        return None
    return unquote(pw) if pw else None


class Redactor:
    """Masks URL passwords, ``password=`` pairs and any literal occurrence of known secrets."""

    def __init__(self, *secrets: str | None) -> None:
        # Longest first so a secret containing another is masked whole.
        found = {s for s in secrets if s}
        for s in list(found):
            found.add(unquote(s))
        self._secrets = sorted(found, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets = sorted({*self._secrets, secret}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        text = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        text = _SQL_PASSWORD.sub(lambda m: m.group("head") + "'" + MASK + "'", text)
        for s in self._secrets:
            if len(s) >= _SHORT:
                text = text.replace(s, MASK)
            else:
                # A short password ("p") would mask letters inside ordinary words and make
                # every message unreadable ("***ort"); it is masked where it stands alone.
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])", MASK, text)
        return text


def redact_url(url: str) -> str:
    return Redactor(password_of(url))(url)
