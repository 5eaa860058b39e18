"""Consumers that read prediction events from message brokers into the store."""
