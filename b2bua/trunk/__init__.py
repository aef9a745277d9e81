"""Carrier trunks: registration to a SIP provider, inbound DIDs, outbound routing."""
