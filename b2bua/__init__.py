"""b2bua: a pure-Python SIP softswitch with call hunting built in."""

__version__ = "0.1.0"
