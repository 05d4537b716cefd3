"""twinning-kg: town twinning as linked open data."""

__version__ = "0.1.0"
