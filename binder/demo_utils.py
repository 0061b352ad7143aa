"""Small helpers the demo notebook's project search finds (`%duck search fiscal quarter`)."""

from __future__ import annotations

import datetime as dt


def fiscal_quarter(date: dt.date, first_month: int = 1) -> int:
    """The fiscal quarter (1-4) of `date` for a fiscal year starting in `first_month`."""
    return (date.month - first_month) % 12 // 3 + 1


def price_band(price: float) -> str:
    """'budget', 'standard' or 'premium': the bands the sales team reports by."""
    if price < 5:
        return "budget"
    if price < 20:
        return "standard"
    return "premium"
