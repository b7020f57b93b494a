"""Writes of the analytics app: the fold (incremental) and the rebuild (from the raw log)."""

from .fold import fold_campaign
from .rebuild import analytics_rebuild, derived_tables_vacuum, fold_live_campaigns

__all__ = ["analytics_rebuild", "derived_tables_vacuum", "fold_campaign", "fold_live_campaigns"]
