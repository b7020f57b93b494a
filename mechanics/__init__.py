"""The campaign mechanics (issue 7): one Django app each, all on the same attribution,
reward ledger, fraud pipeline and event log of `referrals`. Floor 2½: they import
`campaigns` and `referrals`; only `analytics` (and the simulator) may import them."""
