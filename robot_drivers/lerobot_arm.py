"""A LeRobot robot (any follower arm with one motor bus) as joint positions in radians.

:class:`LeRobotArm` drives a LeRobot robot chosen by type and config: ``so101_follower``
by default; ``koch_follower`` or another follower is a change of :class:`LeRobotArmConfig`
(``robot_type``, ``robot_options`` for its other config fields, ``joint_map`` when its
motor names differ from the robot description's joints). Nothing of LeRobot is patched:

- connect: LeRobot's ``connect(calibrate=False)``; the calibration file LeRobot reads
  (``<calibration_dir>/<robot_id>.json``) must exist and match what the motors hold, else
  an error names the file and the command that writes it (never an interactive prompt);
- read: ``get_observation()``, LeRobot's units (degrees, -100..100 or the gripper's 0..100)
  -> servo ticks through LeRobot's calibration -> radians (LeRobot's degree mode: zero at
  the middle of the calibrated range, ``2 pi / (resolution - 1)`` per tick) -> the model's
  radians through the robot description's joint-space calibration
  (``real_rad = direction * model_rad + offset_rad``, ``calibration.joint_space``), in the
  description's joint order;
- write: goal positions only through ``send_action``, so LeRobot's ``max_relative_target``
  (in LeRobot's units, ``max_relative_target`` here) caps every step; the positions
  actually sent come back in radians;
- stop (deactivate, e-stop, loss of the bus, disconnect), ``torque_policy``:
  ``"hold"``: torque stays on and the arm holds where it is (goal := present position,
  sent through ``send_action``); ``"torque_off"``: torque off on every motor (the arm goes
  limp and falls under gravity: support it first). A servo that loses the bus keeps its
  last goal with torque on, whatever the policy: only power removes it;
- loss of the bus: :class:`ArmBusError`, naming each motor that no longer answers a ping.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.motors import MotorNormMode
from lerobot.robots import Robot, RobotConfig, make_robot_from_config

from calibration.joint_space import model_to_real_rad, real_to_model_rad
from executor_core.robot_description import RobotDescription

logger = logging.getLogger(__name__)

TORQUE_POLICIES = ("hold", "torque_off")
# robot types registered by a lerobot.robots submodule of another name
ROBOT_MODULES = {"so100_follower": "so_follower", "so101_follower": "so_follower"}


class ArmBusError(ConnectionError):
    """The motor bus failed; the message names the motors that stopped answering."""

    def __init__(self, message: str, silent_motors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.silent_motors = silent_motors  # empty: every motor still answers (a glitch)


@dataclass
class LeRobotArmConfig:
    robot_type: str = "so101_follower"
    port: str = ""  # the serial port, e.g. /dev/ttyACM0
    robot_id: str = "executor_arm"  # LeRobot's robot id: the calibration file's name
    calibration_dir: str = ""  # "": LeRobot's default (~/.cache/huggingface/lerobot/...)
    max_relative_target: float = 0.0  # LeRobot units per send_action; 0: no cap (None)
    torque_policy: str = "hold"  # on stop: "hold" (torque on, hold here) or "torque_off"
    joint_map: dict[str, str] = field(default_factory=dict)  # our joint -> LeRobot motor
    robot_options: dict[str, Any] = field(default_factory=dict)  # other LeRobot config fields
    robot_module: str = ""  # lerobot.robots.<module> that registers robot_type; "": derived
    connect_retries: int = 2  # a connect that loses a reply on the bus is tried again
    # wait between attempts: a bus busy at power-up (or a host busy starting the graph) is
    # not asked again within milliseconds
    connect_retry_delay_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.robot_type:
            raise ValueError("robot_type must name a LeRobot robot type, e.g. 'so101_follower'")
        if not self.port:
            raise ValueError("port must name the arm's serial port, e.g. /dev/ttyACM0")
        if self.torque_policy not in TORQUE_POLICIES:
            raise ValueError(
                f"torque_policy must be one of {TORQUE_POLICIES}, got {self.torque_policy!r}"
            )
        if self.connect_retries < 0:
            raise ValueError(f"connect_retries must be >= 0, got {self.connect_retries!r}")
        if not (math.isfinite(self.connect_retry_delay_s) and self.connect_retry_delay_s >= 0):
            raise ValueError(
                f"connect_retry_delay_s must be a finite number >= 0, got "
                f"{self.connect_retry_delay_s!r}"
            )
        if not math.isfinite(self.max_relative_target) or self.max_relative_target < 0:
            raise ValueError(
                f"max_relative_target must be >= 0 (0: no cap), got {self.max_relative_target!r}"
            )


@dataclass(frozen=True)
class MotorUnits:
    """LeRobot's normalisation of one motor, to convert its values to radians and back."""

    norm_mode: MotorNormMode
    range_min: int
    range_max: int
    inverted: bool  # LeRobot's drive_mode, where the bus applies it
    max_res: int  # resolution - 1 (4095 for the STS3215)

    @property
    def mid_ticks(self) -> float:
        return (self.range_min + self.range_max) / 2.0

    def to_rad(self, value: float) -> float:
        if self.norm_mode is MotorNormMode.DEGREES:
            return math.radians(value)
        span = self.range_max - self.range_min
        if self.norm_mode is MotorNormMode.RANGE_M100_100:
            value = -value if self.inverted else value
            ticks = (value + 100.0) / 200.0 * span + self.range_min
        else:  # RANGE_0_100
            value = 100.0 - value if self.inverted else value
            ticks = value / 100.0 * span + self.range_min
        return (ticks - self.mid_ticks) * 2 * math.pi / self.max_res

    def from_rad(self, rad: float) -> float:
        if self.norm_mode is MotorNormMode.DEGREES:
            return math.degrees(rad)
        span = self.range_max - self.range_min
        ticks = self.mid_ticks + rad * self.max_res / (2 * math.pi)
        if self.norm_mode is MotorNormMode.RANGE_M100_100:
            value = (ticks - self.range_min) / span * 200.0 - 100.0
            return -value if self.inverted else value
        value = (ticks - self.range_min) / span * 100.0
        return 100.0 - value if self.inverted else value


def make_lerobot_robot(config: LeRobotArmConfig) -> Robot:
    """LeRobot's robot of ``config.robot_type`` with our fields set on its config."""
    module = config.robot_module or ROBOT_MODULES.get(config.robot_type, config.robot_type)
    try:
        importlib.import_module(f"lerobot.robots.{module}")
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"robot_type {config.robot_type!r}: no module lerobot.robots.{module} ({exc}); "
            f"set robot_module to the lerobot.robots submodule that defines it"
        ) from None
    try:
        config_cls = RobotConfig.get_choice_class(config.robot_type)
    except (KeyError, ValueError):
        known = sorted(RobotConfig.get_known_choices())
        raise ValueError(
            f"robot_type {config.robot_type!r} is not a LeRobot robot type (known: {known})"
        ) from None
    names = {f.name for f in dataclasses.fields(config_cls)}
    kwargs: dict[str, Any] = {
        "port": config.port,
        "id": config.robot_id,
        "calibration_dir": Path(config.calibration_dir) if config.calibration_dir else None,
        "max_relative_target": config.max_relative_target or None,
    }
    if "disable_torque_on_disconnect" in names:
        kwargs["disable_torque_on_disconnect"] = config.torque_policy == "torque_off"
    kwargs.update(config.robot_options)
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ValueError(f"robot_type {config.robot_type!r} has no config fields {unknown}")
    try:
        return make_robot_from_config(config_cls(**kwargs))
    except ImportError as exc:  # its motor SDK (e.g. dynamixel-sdk for koch) is missing
        raise ValueError(f"robot_type {config.robot_type!r}: {exc}") from None


class LeRobotArm:
    """Joint positions in the model's radians in, goal positions through ``send_action``."""

    def __init__(
        self,
        config: LeRobotArmConfig,
        description: RobotDescription,
        robot: Robot | None = None,
    ) -> None:
        self.config = config
        self.description = description
        self.joint_names = description.joint_names
        self.motor_names = tuple(config.joint_map.get(n, n) for n in self.joint_names)
        unknown = sorted(set(config.joint_map) - set(self.joint_names))
        if unknown:
            raise ValueError(f"joint_map names joints {unknown} not in the robot description")
        self.robot = robot if robot is not None else make_lerobot_robot(config)
        bus = getattr(self.robot, "bus", None)
        if bus is None:
            raise ValueError(
                f"robot_type {config.robot_type!r} has no single motor bus ('bus'): not supported"
            )
        self._bus = bus
        missing = sorted(set(self.motor_names) - set(bus.motors))
        if missing:
            raise ValueError(
                f"robot_type {config.robot_type!r} has no motors {missing} (its motors: "
                f"{list(bus.motors)}); map the description's joints with joint_map"
            )
        self._units: tuple[MotorUnits, ...] = ()

    # -- connection
    def connect(self) -> None:
        """Connect without LeRobot's interactive calibration; the file must match the arm."""
        robot = self.robot
        fpath = Path(robot.calibration_fpath)
        if not robot.calibration:
            raise FileNotFoundError(
                f"LeRobot calibration {fpath} not found: calibrate the arm first "
                f"(lerobot-calibrate --robot.type={self.config.robot_type} "
                f"--robot.port={self.config.port} --robot.id={self.config.robot_id})"
            )
        for attempt in range(self.config.connect_retries + 1):
            try:
                robot.connect(calibrate=False)
                break
            except (ConnectionError, OSError, RuntimeError) as exc:
                self._safe_disconnect()
                if attempt == self.config.connect_retries:
                    raise ArmBusError(
                        f"could not connect to the arm on {self.config.port}: {exc}"
                    ) from exc
                logger.warning(
                    "connect on %s failed (%s); trying again in %.1f s (attempt %d of %d)",
                    self.config.port,
                    exc,
                    self.config.connect_retry_delay_s,
                    attempt + 2,
                    self.config.connect_retries + 1,
                )
                time.sleep(self.config.connect_retry_delay_s)
        if not robot.is_calibrated:
            self._safe_disconnect()
            raise ValueError(
                f"the motors on {self.config.port} do not hold the calibration in {fpath}: "
                f"recalibrate with lerobot-calibrate (--robot.id={self.config.robot_id})"
            )
        self._units = tuple(self._motor_units(m) for m in self.motor_names)
        logger.info(
            "connected %s on %s (calibration %s, torque policy %s)",
            self.config.robot_type,
            self.config.port,
            fpath,
            self.config.torque_policy,
        )

    @property
    def is_connected(self) -> bool:
        return bool(self.robot.is_connected)

    def _motor_units(self, motor: str) -> MotorUnits:
        bus = self._bus
        cal = bus.calibration[motor]
        return MotorUnits(
            norm_mode=bus.motors[motor].norm_mode,
            range_min=int(cal.range_min),
            range_max=int(cal.range_max),
            inverted=bool(getattr(bus, "apply_drive_mode", False) and cal.drive_mode),
            max_res=int(bus.model_resolution_table[bus.motors[motor].model]) - 1,
        )

    # -- conversions
    def lerobot_to_model_rad(self, values: dict[str, float]) -> np.ndarray:
        """``{"<motor>.pos": LeRobot value}`` -> (J,) model radians, description order."""
        pairs = zip(self.motor_names, self._units, strict=True)
        real = np.array([u.to_rad(float(values[f"{m}.pos"])) for m, u in pairs])
        return real_to_model_rad(self.description, real)

    def model_rad_to_lerobot(self, q_rad: np.ndarray) -> dict[str, float]:
        real = model_to_real_rad(self.description, np.asarray(q_rad, dtype=np.float64))
        return {
            f"{m}.pos": u.from_rad(float(r))
            for m, u, r in zip(self.motor_names, self._units, real, strict=True)
        }

    # -- I/O
    def read_positions_rad(self) -> np.ndarray:
        """(J,) model radians now (LeRobot's ``get_observation``)."""
        try:
            obs = self.robot.get_observation()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise self._bus_error("read", exc) from exc
        return self.lerobot_to_model_rad(obs)

    def send_positions_rad(self, q_rad: np.ndarray) -> np.ndarray:
        """Goal positions through ``send_action``; returns what LeRobot sent (radians)."""
        try:
            sent = self.robot.send_action(self.model_rad_to_lerobot(q_rad))
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise self._bus_error("write", exc) from exc
        return self.lerobot_to_model_rad(sent)

    def stop(self) -> None:
        """Apply the torque policy now (deactivate, e-stop, a failed bus)."""
        if self.config.torque_policy == "torque_off":
            failed = []
            for motor in self.motor_names:  # every motor that answers, whatever the others do
                try:
                    self._bus.disable_torque(motor, num_retry=2)
                except (ConnectionError, RuntimeError):
                    failed.append(motor)
            if failed:
                raise ArmBusError(
                    f"torque off failed on {self.config.port} for motors {failed}", tuple(failed)
                )
        else:
            self.send_positions_rad(self.read_positions_rad())

    def disconnect(self) -> None:
        """Torque policy, then LeRobot's disconnect (which turns torque off if so told)."""
        if not self.is_connected:
            return
        try:
            if self.config.torque_policy == "hold":
                self.stop()
            self.robot.disconnect()
        except (ConnectionError, OSError, RuntimeError) as exc:
            logger.error("disconnect from %s failed: %s", self.config.port, exc)
            self._safe_disconnect()

    def _safe_disconnect(self) -> None:
        handler = getattr(self._bus, "port_handler", None)
        if handler is not None and handler.is_open:
            handler.closePort()

    # -- diagnosis
    def silent_motors(self) -> list[str]:
        """The motors (LeRobot names) that do not answer a ping now."""
        return [m for m in self.motor_names if self._bus.ping(m, num_retry=1) is None]

    def _bus_error(self, what: str, exc: BaseException) -> ArmBusError:
        try:
            silent = self.silent_motors()
        except Exception as ping_exc:  # the port itself is gone
            return ArmBusError(f"bus {what} on {self.config.port} failed ({exc}); ping: {ping_exc}")
        if not silent:
            return ArmBusError(
                f"bus {what} on {self.config.port} failed, yet every motor answers a ping: {exc}"
            )
        named = ", ".join(f"{m!r} (id {self._bus.motors[m].id})" for m in silent)
        verb = "does" if len(silent) == 1 else "do"
        return ArmBusError(
            f"lost the bus on {self.config.port}: motor {named} {verb} not answer ({exc})",
            tuple(silent),
        )
