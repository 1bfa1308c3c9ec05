"""Errors raised to users of ingestion; each names what was found and what was expected."""


class IngestionError(Exception):
    """The source cannot be ingested as a whole (missing columns, wrong column types, too many bad rows)."""
