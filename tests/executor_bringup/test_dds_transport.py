"""The one Fast DDS transport default of the stack, and that a user's choice wins."""

from __future__ import annotations

import pytest

from executor_bringup.dds_transport import apply_default_transports
from executor_bringup.launcher import node_environment


@pytest.mark.parametrize("unset", [{}, {"FASTDDS_BUILTIN_TRANSPORTS": ""}])
def test_unset_or_empty_becomes_the_stack_default(unset: dict[str, str]) -> None:
    env = dict(unset)
    assert apply_default_transports(env) == "DEFAULT"
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}


def test_the_users_value_is_kept() -> None:
    env = {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
    assert apply_default_transports(env) == "UDPv4"
    assert env["FASTDDS_BUILTIN_TRANSPORTS"] == "UDPv4"


def test_node_environment_adds_domain_and_transport_without_touching_the_base() -> None:
    base = {"PATH": "/bin"}
    env = node_environment(base, 7)
    assert env == {"PATH": "/bin", "ROS_DOMAIN_ID": "7", "FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}
    assert base == {"PATH": "/bin"}
    assert "ROS_DOMAIN_ID" not in node_environment(base, None)
