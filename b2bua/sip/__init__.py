"""SIP wire format: messages, URIs, headers, SDP. Pure: no sockets, clocks or tasks."""
