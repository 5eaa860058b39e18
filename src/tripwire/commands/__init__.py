"""The ``tripwire`` subcommands, grouped by what they do; ``tripwire.cli`` assembles them."""
