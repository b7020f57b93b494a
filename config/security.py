"""The client's address, trusting exactly FISSION_NUM_PROXIES reverse proxies."""

from django.conf import settings


def client_ip(request) -> str:
    """REMOTE_ADDR, or with N trusted proxies the N-th address from the right of
    X-Forwarded-For: the one our outermost proxy saw. Addresses further left are
    whatever the client wrote and are never trusted."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    remote = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]
