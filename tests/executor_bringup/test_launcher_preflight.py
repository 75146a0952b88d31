"""The launcher's preflight: ROS modules the nodes need are found before any node starts."""

from __future__ import annotations

import pytest

from executor_bringup import interfaces_env


def test_everything_the_nodes_import_is_installed_here() -> None:
    # scripts/install.sh built executor_interfaces and the control_msgs subset
    assert interfaces_env.missing_ros_modules() == {}
    interfaces_env.require_ros_modules()


def test_a_missing_module_is_named_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        interfaces_env.REQUIRED_MODULES, "no_such_interfaces_pkg", "run scripts/install.sh"
    )
    assert interfaces_env.missing_ros_modules() == {
        "no_such_interfaces_pkg": "run scripts/install.sh"
    }
    with pytest.raises(interfaces_env.InterfacesMissingError) as info:
        interfaces_env.require_ros_modules()
    assert "no_such_interfaces_pkg: run scripts/install.sh" in str(info.value)
    assert "executor_interfaces" not in str(info.value)
