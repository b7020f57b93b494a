from .apikey import ApiKey
from .event import Event, EventReceipt
from .fraud import FraudCase, FraudRuleSet
from .participant import Participant
from .payout import ClawbackRecovery, Payout, PayoutBatch, Reconciliation
from .referral import Referral, ShareLink, ShareOpen
from .reward import CouponCode, RefundedOrder, ReleaseEvent, Reward, RewardCap, RewardRule, RewardTransition

__all__ = [
    "ApiKey",
    "ClawbackRecovery",
    "CouponCode",
    "Event",
    "EventReceipt",
    "FraudCase",
    "FraudRuleSet",
    "Participant",
    "Payout",
    "PayoutBatch",
    "Reconciliation",
    "Referral",
    "RefundedOrder",
    "ReleaseEvent",
    "Reward",
    "RewardCap",
    "RewardRule",
    "RewardTransition",
    "ShareLink",
    "ShareOpen",
]
