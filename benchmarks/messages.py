"""Realistic messages for the benchmarks: an INVITE with SDP as a desk phone sends it
through one proxy (about 900 bytes) and the 200 OK that answers it."""

from __future__ import annotations

from typing import Final

SDP: Final = (
    b"v=0\r\n"
    b"o=- 20518 0 IN IP4 192.0.2.31\r\n"
    b"s=SDP data\r\n"
    b"c=IN IP4 192.0.2.31\r\n"
    b"t=0 0\r\n"
    b"m=audio 11796 RTP/AVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE: Final = (
    b"INVITE sip:0101@pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-524287-1---b2e4d1f1c3a7;rport\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.31:5062;received=198.51.100.7;branch=z9hG4bK1840296314"
    b";rport=5062\r\n"
    b"Record-Route: <sip:192.0.2.1;lr>\r\n"
    b"Max-Forwards: 69\r\n"
    b'Contact: "Front Desk" <sip:0102@192.0.2.31:5062;transport=udp>\r\n'
    b"To: <sip:0101@pbx.example.com>\r\n"
    b'From: "Front Desk" <sip:0102@pbx.example.com>;tag=1983629512\r\n'
    b"Call-ID: 0_3482991604@192.0.2.31\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, REFER, NOTIFY, INFO, UPDATE\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    b"Allow-Events: talk,hold,conference,refer,check-sync\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

OK_200: Final = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-524287-1---b2e4d1f1c3a7;rport=5060\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.31:5062;received=198.51.100.7;branch=z9hG4bK1840296314"
    b";rport=5062\r\n"
    b"Record-Route: <sip:192.0.2.1;lr>\r\n"
    b"Contact: <sip:0101@192.0.2.44:5060>\r\n"
    b"To: <sip:0101@pbx.example.com>;tag=as5d7e2c1f\r\n"
    b'From: "Front Desk" <sip:0102@pbx.example.com>;tag=1983629512\r\n'
    b"Call-ID: 0_3482991604@192.0.2.31\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Server: b2bua\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n"
    b"Supported: replaces\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
