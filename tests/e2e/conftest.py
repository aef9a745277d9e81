"""End-to-end tests: the real ``python -m b2bua run`` process driven by real SIP peers.

A test needs the programs named by its ``requires_tool`` marker, ``sipp`` when it has
none, and nothing when it is marked ``python_only`` (it drives the switch with raw
sockets). When one is missing the test is skipped, unless ``B2BUA_REQUIRE_E2E=1`` (CI
sets it): then it fails, so a CI machine without the peers cannot pass by skipping.
"""

from __future__ import annotations

from typing import Final

import pytest

from tests.support.processes import REQUIRE_ENV, require_tools, switch, switch_factory

__all__ = ["switch", "switch_factory"]

DEFAULT_TOOLS: Final = ("sipp",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_tool(*names): programs the e2e test runs (default: sipp); "
        f"missing ones skip the test, or fail it when {REQUIRE_ENV}=1",
    )
    config.addinivalue_line(
        "markers", "python_only: the e2e test needs no external program, only the switch"
    )


def required_tools(item: pytest.Item) -> set[str]:
    if item.get_closest_marker("python_only") is not None:
        return set()
    markers = list(item.iter_markers("requires_tool"))
    if not markers:
        return set(DEFAULT_TOOLS)
    return {str(name) for marker in markers for name in marker.args}


def pytest_runtest_setup(item: pytest.Item) -> None:
    require_tools(*required_tools(item))
