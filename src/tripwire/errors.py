"""Errors a user can act on. The CLI prints them without a traceback."""


class TripwireError(Exception):
    """Bad input or configuration, with a message that names the file, column or field."""
