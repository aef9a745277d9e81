"""Call hunting: hunt groups, their strategies and the per-call hunt engine (pure).

See ARCHITECTURE.md, "Hunt semantics".
"""

from b2bua.hunt.availability import MemberBook, MemberState
from b2bua.hunt.engine import (
    BUSY_STATUSES,
    CancelTimer,
    ConnectMember,
    Hunt,
    HuntAction,
    HuntState,
    HuntTimer,
    Outcome,
    Overflow,
    RingMember,
    StartTimer,
    StopCause,
    StopMember,
    TraceEntry,
)
from b2bua.hunt.model import (
    Destination,
    Hangup,
    HuntGroup,
    Member,
    OverflowReason,
    Strategy,
    ToExtension,
    ToGroup,
    ToVoicemail,
    parse_destination,
)
from b2bua.hunt.settings import GroupSettings, build_groups, check_groups
from b2bua.hunt.simulation import Happened, Phone, Simulation
from b2bua.hunt.strategies import STRATEGIES, Step, next_step

__all__ = [
    "BUSY_STATUSES",
    "STRATEGIES",
    "CancelTimer",
    "ConnectMember",
    "Destination",
    "GroupSettings",
    "Hangup",
    "Happened",
    "Hunt",
    "HuntAction",
    "HuntGroup",
    "HuntState",
    "HuntTimer",
    "Member",
    "MemberBook",
    "MemberState",
    "Outcome",
    "Overflow",
    "OverflowReason",
    "Phone",
    "RingMember",
    "Simulation",
    "StartTimer",
    "Step",
    "StopCause",
    "StopMember",
    "Strategy",
    "ToExtension",
    "ToGroup",
    "ToVoicemail",
    "TraceEntry",
    "build_groups",
    "check_groups",
    "next_step",
    "parse_destination",
]
