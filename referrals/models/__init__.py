from .apikey import ApiKey
from .event import Event, EventReceipt
from .participant import Participant
from .referral import Referral, ShareLink, ShareOpen

__all__ = ["ApiKey", "Event", "EventReceipt", "Participant", "Referral", "ShareLink", "ShareOpen"]
