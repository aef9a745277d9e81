"""Registrar (RFC 3261 section 10): REGISTER handling apart from binding storage."""
