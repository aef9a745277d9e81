"""The dial plan (b2bua.call.routing): public numbers first, then an authenticated
caller's numbers; 404 for what routes nowhere."""

from __future__ import annotations

import pytest

from b2bua.call.routing import DialPlan, Reject, ToExtension
from b2bua.call.settings import NumberEntry
from b2bua.registrar.settings import Extension

EXTENSIONS = {
    "0101": Extension(password="secret-0101"),
    "0102": Extension(password="secret-0102"),
}
NUMBERS = {
    "+15550100": NumberEntry(destination="extension:0102", public=True),
    "7000": NumberEntry(destination="extension:0101"),
    "0102": NumberEntry(destination="extension:0101", public=True),  # overrides the extension
    "9999": NumberEntry(destination="extension:0404", public=True),  # names no extension
}


@pytest.fixture
def plan() -> DialPlan:
    return DialPlan(EXTENSIONS, NUMBERS)


def test_a_public_number_routes_without_authentication(plan: DialPlan) -> None:
    assert plan.public("+15550100") == ToExtension("0102")


@pytest.mark.parametrize("dialled", ["7000", "0101", "0999", "", None])
def test_everything_else_is_not_public(plan: DialPlan, dialled: str | None) -> None:
    """Internal numbers, extensions and unknown numbers alike: the caller must
    authenticate before the switch says whether the number exists."""
    assert plan.public(dialled) is None


@pytest.mark.parametrize(
    ("dialled", "destination"),
    [
        ("+15550100", ToExtension("0102")),
        ("7000", ToExtension("0101")),
        ("0101", ToExtension("0101")),
        ("0102", ToExtension("0101")),  # the number table comes before the extensions
        ("0999", Reject(404)),
        ("", Reject(404)),
        (None, Reject(404)),
        ("9999", Reject(404)),
    ],
)
def test_route_for_an_authenticated_caller(
    plan: DialPlan, dialled: str | None, destination: ToExtension | Reject
) -> None:
    assert plan.route(dialled) == destination


def test_a_public_number_to_no_extension_is_404(plan: DialPlan) -> None:
    assert plan.public("9999") == Reject(404)


def test_an_empty_plan_routes_nothing() -> None:
    plan = DialPlan({}, {})
    assert plan.public("0101") is None
    assert plan.route("0101") == Reject(404)


def test_number_entry_destination_is_checked() -> None:
    with pytest.raises(ValueError, match="extension:NUMBER"):
        NumberEntry(destination="group:sales")
    assert NumberEntry(destination="extension:0101").extension == "0101"
