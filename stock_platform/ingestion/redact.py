"""Keep the Finnhub key out of every log line and error message.

The key travels in a header (REST) or in the WebSocket URL's query string, and
libraries echo URLs in their exceptions. Everything the ingestion stage logs
about a failure goes through `redact`, and `install_log_redaction` adds a
filter to the root handlers as a second line of defence.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_log_redaction", "redact"]

_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s'\"]+")
_MASK = "****"


def redact(text: object, secret: str = "") -> str:
    """`text` as a string with `secret` and any `token=...` query value replaced by ****."""
    out = str(text)
    if secret:
        out = out.replace(secret, _MASK)
    return _TOKEN_PARAM.sub(lambda m: m.group(1) + _MASK, out)


class RedactingFilter(logging.Filter):
    """A handler filter that rewrites any record whose text contains the secret."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, mask the secret, and keep the record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(message, self.secret)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secret)
        return True


def install_log_redaction(secret: str) -> None:
    """Attach a `RedactingFilter` for `secret` to every handler of the root logger (idempotent)."""
    if not secret:
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) and f.secret == secret for f in handler.filters):
            handler.addFilter(RedactingFilter(secret))
