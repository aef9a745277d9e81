"""Voicemail's pure parts: mailbox settings (and, as they come, message metadata and the
message-waiting bodies of RFC 3842). No I/O: the shell stores and mails."""
