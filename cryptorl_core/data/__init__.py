"""Market data: the aligned hourly market frame, file readers, validation and the
synthetic market generator."""
