"""URIs: parse, format, and the comparison rules of RFC 3261 section 19.1.4."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip.errors import ParseError
from b2bua.sip.uri import AbsoluteUri, SipUri, TelUri, parse_sip_uri, parse_uri, uri_equivalent


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.example.com",
        "sip:alice:secretword@atlanta.example.com;transport=tcp",
        "sips:alice@atlanta.example.com?subject=project%20x&priority=urgent",
        "sip:+1-212-555-1212:1234@gateway.example.com;user=phone",
        "sips:1212@gateway.example.com",
        "sip:alice@192.0.2.4",
        "sip:atlanta.example.com;method=REGISTER?to=alice%40atlanta.example.com",
        "sip:alice;day=tuesday@atlanta.example.com",
        "sip:[2001:db8::10]:5070;lr",
        "sip:%61lice@example.org",
        "sip:user%00name@example.org",
        "sip:host.example.org:5060;maddr=239.255.255.1;ttl=15",
    ],
)
def test_sip_uris_round_trip(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert str(uri) == text


def test_components() -> None:
    uri = parse_sip_uri("sips:bob:pw@[2001:db8::1]:5061;transport=tls;lr?h=v")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "bob",
        "pw",
        "[2001:db8::1]",
        5061,
    )
    assert uri.param("Transport") == "tls"
    assert uri.param("lr") == ""
    assert uri.param("maddr") is None
    assert uri.headers == (("h", "v"),)
    assert uri.host_port == ("2001:db8::1", 5061)
    assert uri.is_secure


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelUri)
    assert tel.is_global
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    other = parse_uri("mailto:alice@example.com")
    assert other == AbsoluteUri("mailto", "alice@example.com")
    with pytest.raises(ParseError) as info:
        parse_sip_uri("tel:+123")
    assert info.value.status_hint == 416


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:alice@",
        "sip:alice@host:99999",
        "sip:alice@host:port",
        "sip:alice@[::1",
        "sip:alice@host;",
        "sip:alice@host;=x",
        "sip:al ice@host",
        "sip:alice@host?x",
        "nocolon",
        "1sip:x",
        "tel:",
        "tel:+12a;x",
        "sip:alice@ho_st",
        "sip:a<b@host",
    ],
)
def test_malformed_uris_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


# RFC 3261 section 19.1.4: the pairs it lists as equivalent and as not equivalent.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com", "tel:+1234"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent_uris(a: str, b: str) -> None:
    assert uri_equivalent(parse_uri(a), parse_uri(b))
    assert uri_equivalent(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_not_equivalent_uris(a: str, b: str) -> None:
    # The first pair differs only by case of the user part: userinfo is case-sensitive.
    assert not uri_equivalent(parse_uri(a), parse_uri(b))
    assert not uri_equivalent(parse_uri(b), parse_uri(a))


_user = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/", min_size=1, max_size=12
).filter(lambda u: "@" not in u)
_host = st.from_regex(r"\A[a-z]([a-z0-9\-]{0,10}[a-z0-9])?(\.[a-z][a-z0-9]{0,6}){0,3}\Z")
_token = st.from_regex(r"\A[a-z][a-z0-9\-]{0,8}\Z")
_params = st.lists(st.tuples(_token, st.one_of(st.none(), _token)), max_size=4)


@given(
    st.sampled_from(["sip", "sips"]),
    st.one_of(st.none(), _user),
    _host,
    st.one_of(st.none(), st.integers(1, 65535)),
    _params,
)
def test_formatting_then_parsing_gives_the_same_uri(
    scheme: str,
    user: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
) -> None:
    uri = SipUri(host, scheme, user, None, port, tuple(params))
    again = parse_uri(str(uri))
    assert again == uri
    assert uri_equivalent(again, uri)


@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_uri(text)
