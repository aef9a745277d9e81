"""Tests of b2bua.sip.digest: RFC 7616 / RFC 8760 digest, parsing, nonces and replay."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip.digest import (
    Algorithm,
    Challenge,
    Credentials,
    NonceKeeper,
    NonceState,
    Password,
    Qop,
    StoredHa1,
    UnsupportedDigestError,
    algorithms_for,
    answer_challenge,
    compute_ha1,
    ha1_for,
    make_challenges,
    parse_challenge,
    parse_credentials,
    verify,
)
from b2bua.sip.errors import LocalProtocolError, ParseError

SECRET = b"0123456789abcdef0123456789abcdef"

# RFC 7616 section 3.9.1
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_RESPONSES = {
    Algorithm.MD5: "8ca523f5e9506fed4657c9700eebdbec",
    Algorithm.SHA256: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def rfc_authorization(algorithm: Algorithm) -> str:
    return (
        f'Digest username="Mufasa", realm="{RFC_REALM}", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC_NONCE}", nc=00000001, '
        f'cnonce="{RFC_CNONCE}", qop=auth, response="{RFC_RESPONSES[algorithm]}", '
        f'opaque="{RFC_OPAQUE}"'
    )


# --- RFC 7616 section 3.9.1 ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_rfc7616_example_verifies(algorithm: Algorithm) -> None:
    credentials = parse_credentials(rfc_authorization(algorithm))
    assert credentials.algorithm is algorithm
    assert (credentials.qop, credentials.nc, credentials.opaque) == (Qop.AUTH, 1, RFC_OPAQUE)
    ha1 = compute_ha1("Mufasa", RFC_REALM, "Circle of Life", algorithm)
    assert verify(credentials, method="GET", ha1=ha1)
    assert not verify(credentials, method="POST", ha1=ha1)


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_rfc7616_example_answered(algorithm: Algorithm) -> None:
    challenge = Challenge(realm=RFC_REALM, nonce=RFC_NONCE, algorithm=algorithm, opaque=RFC_OPAQUE)
    value = answer_challenge(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC_CNONCE,
        nc=1,
    )
    assert f'response="{RFC_RESPONSES[algorithm]}"' in value
    assert "qop=auth" in value
    assert "nc=00000001" in value


def test_rfc2069_form_matches_the_formula() -> None:
    # No qop: response = H(HA1 ":" nonce ":" HA2), computed here by hand with hashlib.
    ha1 = hashlib.md5(b"0101:pbx.example:secret99").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:pbx.example").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()
    value = answer_challenge(
        Challenge(realm="pbx.example", nonce="abc123", qop=()),
        username="0101",
        password="secret99",
        method="REGISTER",
        uri="sip:pbx.example",
        cnonce="unused",
        nc=1,
    )
    assert f'response="{expected}"' in value
    assert "qop" not in value
    assert "cnonce" not in value
    credentials = parse_credentials(value)
    assert credentials.qop is None
    assert credentials.nc is None
    assert verify(credentials, method="REGISTER", ha1=ha1)


def test_auth_int_hashes_the_body() -> None:
    challenge = Challenge(realm="r", nonce="n", qop=(Qop.AUTH_INT,))
    value = answer_challenge(
        challenge,
        username="u",
        password="p",
        method="INVITE",
        uri="sip:x@r",
        cnonce="c",
        nc=3,
        body=b"v=0\r\n",
    )
    credentials = parse_credentials(value)
    assert credentials.qop is Qop.AUTH_INT
    ha1 = compute_ha1("u", "r", "p", Algorithm.MD5)
    ha2 = hashlib.md5(b"INVITE:sip:x@r:" + hashlib.md5(b"v=0\r\n").hexdigest().encode())
    expected = hashlib.md5(f"{ha1}:n:00000003:c:auth-int:{ha2.hexdigest()}".encode())
    assert credentials.response == expected.hexdigest()
    assert verify(credentials, method="INVITE", ha1=ha1, body=b"v=0\r\n")
    assert not verify(credentials, method="INVITE", ha1=ha1, body=b"v=1\r\n")


# --- round trips -----------------------------------------------------------------------


def _answer(challenge: Challenge, password: str = "secret99", **changes: str) -> str:
    args = {"method": "REGISTER", "uri": "sip:pbx.example", **changes}
    return answer_challenge(
        challenge,
        username="0101",
        password=password,
        method=args["method"],
        uri=args["uri"],
        cnonce="0a4f113b",
        nc=1,
    )


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("qop", [(Qop.AUTH,), (), (Qop.AUTH_INT, Qop.AUTH)])
def test_round_trip(algorithm: Algorithm, qop: tuple[Qop, ...]) -> None:
    challenge = Challenge(
        realm="pbx.example", nonce="n0nce", algorithm=algorithm, opaque="op", qop=qop
    )
    ha1 = compute_ha1("0101", "pbx.example", "secret99", algorithm)
    good = parse_credentials(_answer(challenge))
    assert good.algorithm is algorithm
    assert good.opaque == "op"
    assert good.qop is (Qop.AUTH if qop else None)
    assert verify(good, method="REGISTER", ha1=ha1)
    assert verify(good, method="REGISTER", ha1=ha1.upper())
    assert not verify(parse_credentials(_answer(challenge, "secret98")), method="REGISTER", ha1=ha1)
    assert not verify(good, method="INVITE", ha1=ha1)
    tampered = dataclasses.replace(good, uri="sip:other.example")
    assert not verify(tampered, method="REGISTER", ha1=ha1)
    other_uri = parse_credentials(_answer(challenge, uri="sip:other.example"))
    assert not verify(dataclasses.replace(other_uri, uri=good.uri), method="REGISTER", ha1=ha1)


def test_verify_refuses_an_ha1_of_the_other_algorithm() -> None:
    challenge = Challenge(realm="pbx.example", nonce="n", algorithm=Algorithm.SHA256)
    credentials = parse_credentials(_answer(challenge))
    md5_ha1 = compute_ha1("0101", "pbx.example", "secret99", Algorithm.MD5)
    assert not verify(credentials, method="REGISTER", ha1=md5_ha1)


def test_verify_is_false_for_qop_without_nc() -> None:
    ha1 = compute_ha1("u", "r", "p", Algorithm.MD5)
    credentials = Credentials(
        username="u", realm="r", nonce="n", uri="sip:r", response="00", qop=Qop.AUTH
    )
    assert not verify(credentials, method="REGISTER", ha1=ha1)


def test_answer_refuses_an_out_of_range_nc() -> None:
    with pytest.raises(LocalProtocolError):
        answer_challenge(
            Challenge(realm="r", nonce="n"),
            username="u",
            password="p",
            method="REGISTER",
            uri="sip:r",
            cnonce="c",
            nc=0,
        )


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("qop", [(Qop.AUTH,), ()])
def test_answer_with_a_stored_ha1_equals_the_password_answer(
    algorithm: Algorithm, qop: tuple[Qop, ...]
) -> None:
    challenge = Challenge(realm="pbx.example", nonce="n0nce", algorithm=algorithm, qop=qop)
    ha1 = compute_ha1("0101", "pbx.example", "secret99", algorithm)

    def answer(password: str | None, stored: str | None) -> str:
        return answer_challenge(
            challenge,
            username="0101",
            password=password,
            ha1=stored,
            method="REGISTER",
            uri="sip:pbx.example",
            cnonce="c",
            nc=7,
        )

    assert answer(None, ha1.upper()) == answer("secret99", None)
    assert verify(parse_credentials(answer(None, ha1)), method="REGISTER", ha1=ha1)


@pytest.mark.parametrize(("password", "ha1"), [(None, None), ("p", "00")])
def test_answer_needs_exactly_one_of_password_and_ha1(
    password: str | None, ha1: str | None
) -> None:
    with pytest.raises(LocalProtocolError):
        answer_challenge(
            Challenge(realm="r", nonce="n"),
            username="u",
            password=password,
            ha1=ha1,
            method="REGISTER",
            uri="sip:r",
            cnonce="c",
            nc=1,
        )


# --- secrets ---------------------------------------------------------------------------


def test_secret_types() -> None:
    md5 = compute_ha1("0101", "pbx.example", "secret99", Algorithm.MD5)
    stored = StoredHa1(md5=md5.upper())
    assert ha1_for(stored, username="0101", realm="pbx.example", algorithm=Algorithm.MD5) == md5
    assert ha1_for(stored, username="0101", realm="pbx.example", algorithm=Algorithm.SHA256) is None
    password = Password("secret99")
    assert ha1_for(password, username="0101", realm="pbx.example", algorithm=Algorithm.MD5) == md5
    preferred = [Algorithm.SHA256, Algorithm.MD5]
    assert algorithms_for(stored, preferred) == [Algorithm.MD5]
    assert algorithms_for(password, preferred) == preferred
    assert algorithms_for(StoredHa1(sha256="ab", md5="cd"), preferred) == preferred
    assert algorithms_for(StoredHa1(), preferred) == []


# --- challenges ------------------------------------------------------------------------


def test_challenge_format() -> None:
    challenge = Challenge(
        realm="pbx.example", nonce="abc", opaque="xyz", algorithm=Algorithm.SHA256, stale=True
    )
    assert challenge.to_header_value() == (
        'Digest realm="pbx.example", nonce="abc", opaque="xyz", algorithm=SHA-256, '
        'qop="auth", stale=true'
    )
    assert Challenge(realm='a"b\\c', nonce="n", qop=()).to_header_value() == (
        'Digest realm="a\\"b\\\\c", nonce="n", algorithm=MD5'
    )


def test_challenge_refuses_control_characters() -> None:
    with pytest.raises(LocalProtocolError):
        Challenge(realm="pbx\r\nVia: x", nonce="n").to_header_value()


def test_make_challenges_one_per_algorithm_in_order() -> None:
    values = make_challenges("pbx.example", "n", "o", [Algorithm.SHA256, Algorithm.MD5], False)
    assert [parse_challenge(v).algorithm for v in values] == [Algorithm.SHA256, Algorithm.MD5]
    assert all(parse_challenge(v).nonce == "n" for v in values)
    (only,) = make_challenges("pbx.example", "n", None, [Algorithm.MD5], True)
    assert only == 'Digest realm="pbx.example", nonce="n", algorithm=MD5, qop="auth", stale=true'
    with pytest.raises(LocalProtocolError):
        make_challenges("r", "n", None, [], False)
    with pytest.raises(LocalProtocolError):
        make_challenges("r", "n", None, [Algorithm.MD5, Algorithm.MD5], False)


def test_parse_challenge_from_a_carrier() -> None:
    challenge = parse_challenge(
        'digest REALM = "trunk.example" ,domain="sip:trunk.example",NONCE="x y",'
        ' qop="auth-int, foo,auth", algorithm=sha-256, stale=TRUE, charset=UTF-8'
    )
    assert challenge == Challenge(
        realm="trunk.example",
        nonce="x y",
        algorithm=Algorithm.SHA256,
        qop=(Qop.AUTH_INT, Qop.AUTH),
        stale=True,
    )
    assert parse_challenge('Digest realm="r", nonce="n"').qop == ()
    assert parse_challenge('Digest realm="r", nonce="n", stale=false').stale is False


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('Digest realm="r"', "without nonce"),
        ('Digest nonce="n"', "without realm"),
        ('Basic realm="r"', "scheme"),
        ('Digest realm="r", nonce="n", algorithm=MD5-sess', "algorithm"),
        ('Digest realm="r", nonce="n", algorithm=SHA-512-256', "algorithm"),
        ('Digest realm="r", nonce="n", qop="auth-conf"', "qop"),
    ],
)
def test_parse_challenge_errors(value: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_challenge(value)


def test_unsupported_challenge_is_distinguishable() -> None:
    with pytest.raises(UnsupportedDigestError) as info:
        parse_challenge('Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
    assert info.value.status_hint == 400


_qdtext = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)


@given(
    st.builds(
        Challenge,
        realm=_qdtext,
        nonce=_qdtext,
        opaque=st.none() | _qdtext,
        algorithm=st.sampled_from(Algorithm),
        qop=st.lists(st.sampled_from(Qop), unique=True).map(tuple),
        stale=st.booleans(),
    )
)
def test_challenges_parse_back_equal(challenge: Challenge) -> None:
    assert parse_challenge(challenge.to_header_value()) == challenge


@st.composite
def credentials_values(draw: st.DrawFn) -> Credentials:
    qop = draw(st.none() | st.sampled_from(Qop))
    return Credentials(
        username=draw(_qdtext),
        realm=draw(_qdtext),
        nonce=draw(_qdtext),
        uri=draw(_qdtext),
        response=draw(st.text("0123456789abcdef", min_size=1, max_size=64)),
        algorithm=draw(st.sampled_from(Algorithm)),
        qop=qop,
        cnonce=None if qop is None else draw(_qdtext),
        nc=None if qop is None else draw(st.integers(1, 2**32 - 1)),
        opaque=draw(st.none() | _qdtext),
        extra=(("userhash", "false"),),
    )


@given(credentials_values())
def test_credentials_parse_back_equal(credentials: Credentials) -> None:
    assert parse_credentials(credentials.to_header_value()) == credentials


# --- credentials parsing ---------------------------------------------------------------


def test_parse_credentials_tolerates_odd_spelling() -> None:
    value = (
        '  dIgEsT\tUserName = 0101 ,REALM="pbx.example",  nonce="a,b=c"\t,'
        'uri=sip:pbx.example ,response = "0123456789ABCDEF0123456789abcdef",'
        ' ALGORITHM="md5",cnonce=xyz,QOP="Auth",nc=0000000a, foo="bar \\"baz\\""'
    )
    credentials = parse_credentials(value)
    assert credentials == Credentials(
        username="0101",
        realm="pbx.example",
        nonce="a,b=c",
        uri="sip:pbx.example",
        response="0123456789ABCDEF0123456789abcdef",
        algorithm=Algorithm.MD5,
        qop=Qop.AUTH,
        cnonce="xyz",
        nc=10,
        extra=(("foo", 'bar "baz"'),),
    )


def test_parse_credentials_defaults_to_md5() -> None:
    value = 'Digest username="a", realm="r", nonce="n", uri="sip:r", response="00"'
    assert parse_credentials(value).algorithm is Algorithm.MD5
    lower = value + ", algorithm=sha-256"
    assert parse_credentials(lower).algorithm is Algorithm.SHA256


_BASE = 'username="a", realm="r", nonce="n", uri="sip:r", response="0f"'


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "without an authentication scheme"),
        ("Digest", "without username"),
        ('Digest realm="r", nonce="n", uri="sip:r", response="0f"', "without username"),
        ('Digest username="a", nonce="n", uri="sip:r", response="0f"', "without realm"),
        ('Digest username="a", realm="r", uri="sip:r", response="0f"', "without nonce"),
        ('Digest username="a", realm="r", nonce="n", response="0f"', "without uri"),
        ('Digest username="a", realm="r", nonce="n", uri="sip:r"', "without response"),
        (f"Basic {_BASE}", "unsupported authentication scheme"),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "unsupported authentication scheme"),
        (f'Digest {_BASE}, realm="r2"', "duplicate realm"),
        (f'Digest {_BASE}, REALM="r2"', "duplicate realm"),
        (f"Digest {_BASE},", "trailing comma"),
        (f"Digest {_BASE},, x=y", "malformed parameter"),
        (f'Digest {_BASE} realm="r"', "malformed parameter"),
        (f'Digest {_BASE}, realm="unterminated', "malformed parameter"),
        (f"Digest {_BASE}, flag", "malformed parameter"),
        ('Digest username="a", realm="r", nonce="n", uri="sip:r", response="xyz"', "hex"),
        (f'Digest {_BASE}, qop=auth, cnonce="c", nc=1', "nc"),
        (f'Digest {_BASE}, qop=auth, cnonce="c", nc=0000000g', "nc"),
        (f'Digest {_BASE}, qop=auth, cnonce="c", nc=0000000A', "nc"),
        (f'Digest {_BASE}, qop=auth, cnonce="c"', "without cnonce and nc"),
        (f"Digest {_BASE}, qop=auth, nc=00000001", "without cnonce and nc"),
        (f'Digest {_BASE}, qop=auth-conf, cnonce="c", nc=00000001', "qop"),
        (f"Digest {_BASE}, algorithm=MD5-sess", "algorithm"),
        (f"Digest {_BASE}, algorithm=SHA-256-sess", "algorithm"),
    ],
)
def test_parse_credentials_errors(value: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as info:
        parse_credentials(value)
    assert info.value.status_hint == 400


@given(st.text())
def test_arbitrary_text_raises_only_parse_error(value: str) -> None:
    for parse in (parse_credentials, parse_challenge):
        with contextlib.suppress(ParseError):
            parse(value)


@given(st.text(alphabet='Digest usernamrlcoqp="\\,=\t0123456789abcdef-', max_size=120))
def test_digest_like_text_raises_only_parse_error(tail: str) -> None:
    for parse in (parse_credentials, parse_challenge):
        with contextlib.suppress(ParseError):
            parse("Digest " + tail)


# --- NonceKeeper -----------------------------------------------------------------------


def test_nonce_valid_then_stale_at_the_exact_boundary() -> None:
    keeper = NonceKeeper(SECRET, lifetime=300.0)
    nonce = keeper.issue(1000.0)
    assert keeper.check(nonce, 1000.0) is NonceState.VALID
    assert keeper.check(nonce, 1299.999) is NonceState.VALID
    assert keeper.check(nonce, 1300.0) is NonceState.STALE
    assert keeper.check(nonce, 99999.0) is NonceState.STALE
    # From the future (the monotonic base moved while the secret stayed): ours, age unknown.
    assert keeper.check(nonce, 999.0) is NonceState.STALE


def test_nonces_issued_at_the_same_instant_differ() -> None:
    keeper = NonceKeeper(SECRET)
    nonces = {keeper.issue(5.0) for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 40 and keeper.check(n, 5.0) is NonceState.VALID for n in nonces)


def _forge(stamp: bytes, secret: bytes) -> str:
    mac = hmac.new(secret, stamp, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(stamp + mac).decode()


def test_nonce_invalid_when_not_ours() -> None:
    keeper = NonceKeeper(SECRET)
    nonce = keeper.issue(10.0)
    other = NonceKeeper(b"another secret, 16+ bytes long")
    assert other.check(nonce, 10.0) is NonceState.INVALID
    for i in range(len(nonce)):
        flipped = "A" if nonce[i] != "A" else "B"
        tampered = nonce[:i] + flipped + nonce[i + 1 :]
        assert keeper.check(tampered, 10.0) is NonceState.INVALID
    # A new timestamp with a MAC made without our secret.
    stamp = struct.pack(">d", 10.0) + (1).to_bytes(6, "big")
    assert keeper.check(_forge(stamp, b"guessed key 1234"), 10.0) is NonceState.INVALID
    assert keeper.check(_forge(stamp, SECRET), 10.0) is NonceState.VALID  # the format we claim
    for garbage in ["", "abc", nonce + "=", nonce[:-1], nonce + "A", " " + nonce[1:], "é" * 40]:
        assert keeper.check(garbage, 10.0) is NonceState.INVALID
        assert not keeper.accept_nc(garbage, 1, 10.0)


@given(st.text(max_size=60))
def test_garbage_nonces_are_invalid(text: str) -> None:
    keeper = NonceKeeper(SECRET)
    assert keeper.check(text, 0.0) is NonceState.INVALID


def test_nonce_keeper_refuses_weak_settings() -> None:
    with pytest.raises(ValueError, match="secret"):
        NonceKeeper(b"short")
    with pytest.raises(ValueError, match="lifetime"):
        NonceKeeper(SECRET, lifetime=0)
    with pytest.raises(ValueError, match="max_tracked"):
        NonceKeeper(SECRET, max_tracked=0)


def test_nc_replay_is_refused() -> None:
    keeper = NonceKeeper(SECRET)
    nonce = keeper.issue(0.0)
    assert not keeper.accept_nc(nonce, 0, 1.0)
    assert keeper.accept_nc(nonce, 1, 1.0)
    assert not keeper.accept_nc(nonce, 1, 2.0)  # same nc again
    assert keeper.accept_nc(nonce, 2, 3.0)
    assert keeper.accept_nc(nonce, 5, 4.0)  # gaps are fine (RFC 7616: greater, not next)
    assert not keeper.accept_nc(nonce, 4, 5.0)  # lower
    assert not keeper.accept_nc(nonce, 5, 5.0)
    assert keeper.accept_nc(nonce, 6, 5.0)
    # Each nonce has its own count.
    second = keeper.issue(6.0)
    assert keeper.accept_nc(second, 1, 6.0)
    assert len(keeper) == 2


def test_nc_refused_for_stale_or_foreign_nonces() -> None:
    keeper = NonceKeeper(SECRET, lifetime=300.0)
    nonce = keeper.issue(0.0)
    assert not keeper.accept_nc(nonce, 1, 300.0)
    assert not keeper.accept_nc(NonceKeeper(SECRET[::-1]).issue(0.0), 1, 1.0)
    assert len(keeper) == 0


def test_expired_nonces_leave_the_table() -> None:
    keeper = NonceKeeper(SECRET, lifetime=300.0)
    for i in range(50):
        assert keeper.accept_nc(keeper.issue(float(i)), 1, float(i))
    assert len(keeper) == 50
    fresh = keeper.issue(320.0)
    assert keeper.accept_nc(fresh, 1, 320.0)  # purges those issued at t <= 20
    assert len(keeper) == 30
    assert keeper.accept_nc(keeper.issue(1000.0), 1, 1000.0)
    assert len(keeper) == 1


def test_table_stays_bounded_under_100k_nonces() -> None:
    keeper = NonceKeeper(SECRET, lifetime=1e9, max_tracked=1000)
    first = keeper.issue(0.0)
    assert keeper.accept_nc(first, 1, 0.0)
    for i in range(100_000):
        now = i * 0.001
        assert keeper.accept_nc(keeper.issue(now), 1, now)
        assert len(keeper) <= 1000
    assert len(keeper) == 1000
    # The evicted nonce lost its history: it is refused (a silent re-challenge for the
    # phone), never accepted again from nc=1, which would let a replay through.
    assert keeper.check(first, 100.0) is NonceState.VALID
    assert not keeper.accept_nc(first, 1, 100.0)
    assert not keeper.accept_nc(first, 2, 100.0)


def test_unused_nonce_older_than_an_evicted_one_is_refused() -> None:
    keeper = NonceKeeper(SECRET, max_tracked=2)
    old_unused = keeper.issue(0.0)
    nonces = [keeper.issue(float(t)) for t in (1, 2, 3)]
    for t, nonce in enumerate(nonces, start=1):
        assert keeper.accept_nc(nonce, 1, float(t))
    assert len(keeper) == 2
    assert not keeper.accept_nc(old_unused, 1, 4.0)
    assert keeper.accept_nc(keeper.issue(4.0), 1, 4.0)
