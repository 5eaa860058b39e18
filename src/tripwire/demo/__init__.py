"""``tripwire demo``: the whole loop on a built-in fraud scenario, no files or network needed."""
