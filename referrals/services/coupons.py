"""The coupon code bank of a coupon rule: ops upload the codes, each grant takes one."""

import re

from django.db import transaction

from config.errors import ApplicationError
from referrals.models import CouponCode, RewardRule

CODE = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces: what a shop's till accepts
MAX_CODES = 200_000


@transaction.atomic
def coupon_codes_upload(*, rule_id: int, text: str) -> dict:
    """Add the codes in `text` (one per line; a CSV's first column) to the rule's bank.

    Idempotent: a code already in the bank is counted as a duplicate, not added twice.
    Refused as a whole, with the offending lines named, if any line is not a valid code.
    """
    rule = RewardRule.objects.filter(pk=rule_id).first()
    if rule is None or rule.kind != RewardRule.Kind.COUPON:
        raise ApplicationError("coupon_rule_needed", "Codes can only be uploaded for a coupon rule.")
    codes, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(",", 1)[0].strip().strip('"')
        if not code or (number == 1 and code.lower() in {"code", "coupon", "coupon_code"}):
            continue  # blank lines and a header row
        if not CODE.fullmatch(code):
            bad.append(number)
        else:
            codes.append(code)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + ("…" if len(bad) > 10 else "")
        raise ApplicationError(
            "coupon_codes_invalid",
            f"Line(s) {shown}: a code is 1–64 printable characters without spaces. Nothing was added.",
        )
    if not codes:
        raise ApplicationError("coupon_codes_empty", "The upload holds no codes.")
    if len(codes) > MAX_CODES:
        raise ApplicationError("coupon_codes_too_many", f"Upload at most {MAX_CODES:,} codes at a time.")
    unique = list(dict.fromkeys(codes))
    before = CouponCode.objects.filter(rule=rule).count()
    CouponCode.objects.bulk_create(
        (CouponCode(rule=rule, code=code) for code in unique), batch_size=5000, ignore_conflicts=True
    )
    added = CouponCode.objects.filter(rule=rule).count() - before
    free = CouponCode.objects.filter(rule=rule, reward__isnull=True).count()
    return {"added": added, "duplicates": len(codes) - added, "free": free}
