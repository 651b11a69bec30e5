"""Where outbound events may go: the delivery service's SSRF guard, applied when a URL is saved too."""

from __future__ import annotations

from flask import current_app

from app.services.webhooks import delivery as webhook_delivery
from app.services.errors import Invalid


def allow_loopback(extension: bool) -> bool:
    """Extensions on this machine (loopback only) in development, so `make run` can serve a local extension."""
    return extension and bool(current_app.config["KIKET_EXTENSIONS_ALLOW_LOOPBACK"])


def check(url: str, *, extension: bool, field: str = "url") -> None:
    """Refuse a URL the delivery service would refuse (scheme, credentials, private addresses).

    A name that does not resolve now is accepted: each attempt resolves and checks it again.
    """
    try:
        webhook_delivery.resolve_target(url, current_app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"],
                                        allow_loopback=allow_loopback(extension))
    except webhook_delivery.Refused as refusal:
        raise Invalid({field: f"Refused: {refusal}. Outbound events go to public addresses only"
                              f"{' (set KIKET_WEBHOOK_ALLOW_PRIVATE to allow private ones)' if not extension else ''}."})
    except OSError:
        pass
