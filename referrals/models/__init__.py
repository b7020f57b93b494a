from .apikey import ApiKey
from .event import Event, EventReceipt
from .participant import Participant
from .payout import ClawbackRecovery, Payout, PayoutBatch, Reconciliation
from .referral import Referral, ShareLink, ShareOpen
from .reward import CouponCode, RefundedOrder, Reward, RewardCap, RewardRule, RewardTransition

__all__ = [
    "ApiKey",
    "ClawbackRecovery",
    "CouponCode",
    "Event",
    "EventReceipt",
    "Participant",
    "Payout",
    "PayoutBatch",
    "Reconciliation",
    "Referral",
    "RefundedOrder",
    "Reward",
    "RewardCap",
    "RewardRule",
    "RewardTransition",
    "ShareLink",
    "ShareOpen",
]
