"""Invite-task beat jobs: thin, the work is in services."""

from celery import shared_task

from .services import invite_tiers_sweep


@shared_task(name="invites.invite_tiers_sweep")
def invite_tiers_sweep_task() -> dict:
    """Every minute: record tiers reached (event log + TierReached) and re-ask the ledger for
    any tier reward missing. Idempotent, so an overlapping or repeated run is harmless."""
    return invite_tiers_sweep()
