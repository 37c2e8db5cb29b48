"""The security headers every response carries: the page, its static files, the docs, the API.

The page and the docs load every script and style sheet from the application itself (no
inline script or style), so the Content-Security-Policy allows ``'self'`` only; ``data:``
images are the page's empty favicon and the icons inside Swagger UI's style sheet.
"""

from __future__ import annotations

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
