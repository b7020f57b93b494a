"""Money for people, from exact integer fen (the mechanics keep prices in fen)."""


def yuan(fen: int | None) -> str | None:
    """12345 → "123.45"."""
    if fen is None:
        return None
    return f"{fen // 100}.{fen % 100:02d}"
