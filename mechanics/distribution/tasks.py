from celery import shared_task


@shared_task(name="distribution.bindings_expire", acks_late=True)
def bindings_expire_task() -> int:
    """Beat, every 10 minutes: mark bindings past their expiry as expired. Idempotent."""
    from .services import bindings_expire

    return bindings_expire()
