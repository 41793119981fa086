"""The terminology engine. Never imports Flask."""
