from .apikey import ApiKey
from .event import Event, EventReceipt
from .participant import Participant
from .payout import Payout, PayoutBatch, Reconciliation
from .referral import Referral, ShareLink, ShareOpen
from .reward import Reward, RewardCap, RewardRule, RewardTransition

__all__ = [
    "ApiKey",
    "Event",
    "EventReceipt",
    "Participant",
    "Payout",
    "PayoutBatch",
    "Reconciliation",
    "Referral",
    "Reward",
    "RewardCap",
    "RewardRule",
    "RewardTransition",
    "ShareLink",
    "ShareOpen",
]
