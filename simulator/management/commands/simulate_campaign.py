"""`manage.py simulate_campaign`: write a believable viral campaign (see docs/simulator.md)."""

import signal
import time

from django.core.management.base import BaseCommand, CommandError

from simulator.engine import simulate


class Command(BaseCommand):
    help = "Simulate a viral campaign through the real services (or, with --bulk, with COPY)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign-slug", default="simulated", help="made (live) if missing")
        parser.add_argument("--participants", type=int, default=3000, help="about this many join")
        parser.add_argument("--days", type=float, default=3.0, help="from the campaign's start")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--channels", default="", help="mix, e.g. moments:0.5,groups:0.3,kol:0.2 (default: all equally)"
        )
        parser.add_argument("--branching", type=float, default=2.0, help="mean invitees per sharer")
        parser.add_argument("--share-rate", type=float, default=0.4, help="participants who share")
        parser.add_argument("--join-rate", type=float, default=0.4, help="opens that join")
        parser.add_argument("--qualify-rate", type=float, default=0.6, help="participants who become valid")
        parser.add_argument("--retention", type=float, default=0.35, help="chance to come back on day 1")
        parser.add_argument("--events-per-day", type=float, default=3.0, help="events on an active day")
        parser.add_argument("--fraud-rings", type=int, default=0)
        parser.add_argument("--ring-size", type=int, default=6, help="accounts per ring (≤ 9 to be found)")
        parser.add_argument("--time-zone", default=None, help="for diurnal traffic (default: the campaign's)")
        parser.add_argument("--bulk", action="store_true", help="COPY the rows (benchmark scale)")
        parser.add_argument(
            "--no-settle", action="store_true", help="skip granting rewards and fraud scoring"
        )
        parser.add_argument(
            "--live",
            type=float,
            default=0,
            metavar="SECONDS",
            help="no backfill: keep playing the same plan through the services in real time, "
            "checking every SECONDS, until stopped",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if the campaign already has participants"
        )

    def handle(self, *args, **o):
        from referrals.models import Referral

        if o["if_empty"] and Referral.objects.filter(campaign__slug=o["campaign_slug"]).exists():
            self.stdout.write(f"campaign {o['campaign_slug']} already has participants: nothing simulated")
            return
        started = time.perf_counter()
        stopping = []
        if o["live"]:  # `make run` stops its children with SIGTERM: finish the action in hand
            signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
            signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
        try:
            summary = simulate(
                campaign_slug=o["campaign_slug"],
                participants=o["participants"],
                days=o["days"],
                seed=o["seed"],
                channels=o["channels"],
                branching=o["branching"],
                share_rate=o["share_rate"],
                join_rate=o["join_rate"],
                qualify_rate=o["qualify_rate"],
                retention=o["retention"],
                events_per_day=o["events_per_day"],
                fraud_rings=o["fraud_rings"],
                ring_size=o["ring_size"],
                time_zone=o["time_zone"],
                bulk=o["bulk"],
                settle=not o["no_settle"],
                live=o["live"],
                stop=lambda: bool(stopping),
                progress=lambda message: self.stderr.write(f"  {message}"),
            )
        except ValueError as exc:
            if not o["live"]:
                raise CommandError(str(exc)) from exc
            # Live, as a child of `make run`: exiting would stop the whole platform.
            self.stderr.write(f"simulator: {exc}; idle until stopped")
            while not stopping:
                time.sleep(1)
            return
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(f"done in {time.perf_counter() - started:.1f} s")
