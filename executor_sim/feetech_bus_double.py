"""A test double of a Feetech STS3215 servo bus on a pseudo-terminal, backed by MuJoCo.

LeRobot's ``FeetechMotorsBus`` talks to the servos through ``scservo_sdk`` over a serial
port. :class:`FeetechBusDouble` opens a pseudo-terminal (``os.openpty``) and serves its
master side from a thread, answering the servo protocol (protocol 0 of the STS series) for
one motor per joint, so that LeRobot's real robot code (``SO101Follower``: connect, the
firmware / model handshake, ``configure``, the calibration check, ``get_observation``,
``send_action``, ``disconnect``) runs unchanged against :attr:`port` (the slave path).

What it emulates:

- instructions PING (also the broadcast ping), READ, WRITE, REG_WRITE / ACTION, SYNC_READ
  and SYNC_WRITE, with status packets, checksums, and silence for broadcast writes;
- a 256-byte register table per motor (little-endian words): model number 777 (sts3215),
  firmware version, ID, baud rate, Return_Delay_Time, limits, P/I/D coefficients, Phase,
  Homing_Offset (sign-magnitude, bit 11), Operating_Mode, Torque_Enable, Acceleration,
  Goal_Position / Present_Position / Present_Velocity (sign-magnitude, bit 15), Lock,
  voltage, temperature, Moving; EEPROM holds what LeRobot's calibration wrote;
- the joints: ``Present_Position`` is the MuJoCo SO-101's joint angle seen through the
  LeRobot calibration, ``Goal_Position`` (clamped to Min/Max_Position_Limit, like the
  servo) becomes the joint's position setpoint. Physics advances on the wall clock, in its
  own thread every ``physics_period_s`` (the time since the last step, at most 0.1 s at
  once: a stalled thread slows the arm down rather than teleporting it). With torque off
  a joint's setpoint follows where the joint is (it stays put; no gravity sag is
  modelled), enabling torque holds the present position (Goal_Position :=
  Present_Position, as the servo does);
- faults: :meth:`unplug` makes motors (or all) stop answering, as a cut cable or lost
  power does; :meth:`replug` undoes it.

The tick <-> radian mapping is the one LeRobot's calibration implies (its degree mode):
``real_rad = (present_ticks - mid) * 2 pi / 4095`` with ``mid`` the middle of the motor's
calibrated range; the model joint (MuJoCo) relates to the arm's reading through the robot
description's joint-space calibration, ``real_rad = direction * model_rad + offset_rad``.
:func:`lerobot_calibration_for` writes a LeRobot calibration consistent with a description.

Run on its own, it stands in for the arm of ``executor-bringup so101`` (no hardware)::

    python -m executor_sim.feetech_bus_double --calibration_dir=/tmp/so101_double
    # prints the port; then, in another terminal:
    executor-bringup so101 --port /dev/pts/N \
        --set lerobot_arm_node.calibration_dir=/tmp/so101_double --set camera_node.source=synthetic
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
import tty
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import mujoco
import numpy as np

from executor_core.atomic_io import write_text_atomic
from executor_core.config_cli import cli_main, parse_config
from executor_core.robot_description import RobotDescription, default_robot_path
from executor_sim.arm_backend import MujocoSo101Backend

logger = logging.getLogger(__name__)

# Protocol 0 of the Feetech STS series (what scservo_sdk speaks).
INST_PING, INST_READ, INST_WRITE, INST_REG_WRITE, INST_ACTION = 1, 2, 3, 4, 5
INST_SYNC_READ, INST_SYNC_WRITE = 0x82, 0x83
BROADCAST_ID = 0xFE
STS3215_MODEL_NUMBER = 777
FIRMWARE_VERSION = (3, 10)
TICKS_PER_RAD = 4095 / (2 * math.pi)  # LeRobot divides by (resolution - 1)
TICKS_MID = 2047
# Register addresses (STS/SMS control table, as lerobot.motors.feetech.tables).
ADDR = {
    "Firmware_Major_Version": (0, 1),
    "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2),
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Protection_Current": (28, 2),
    "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1),
    "Overload_Torque": (36, 1),
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Lock": (55, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Moving": (66, 1),
    "Maximum_Acceleration": (85, 1),
}
LIVE_FIRST, LIVE_END = 56, 70  # registers computed from the simulator on each read


def _sign_magnitude_decode(raw: int, sign_bit: int) -> int:
    return -(raw & ~(1 << sign_bit)) if raw & (1 << sign_bit) else raw


def _sign_magnitude_encode(value: int, sign_bit: int) -> int:
    return (-value) | (1 << sign_bit) if value < 0 else value


@dataclass(frozen=True)
class MotorSpec:
    """One servo: its bus ID, the joint it drives and its LeRobot calibration (ticks)."""

    motor_id: int
    joint: str
    homing_offset: int
    range_min: int
    range_max: int

    @property
    def mid_ticks(self) -> float:
        return (self.range_min + self.range_max) / 2.0


def lerobot_calibration_for(
    description: RobotDescription, homing_offsets: dict[str, int] | None = None
) -> dict[str, dict[str, int]]:
    """A LeRobot calibration (``{motor: {id, drive_mode, homing_offset, range_min,
    range_max}}``) whose ranges cover the description's limits, centred on tick 2047."""
    homing_offsets = homing_offsets or {}
    out = {}
    for i, joint in enumerate(description.joints):
        real = joint.direction * np.array([joint.lower_rad, joint.upper_rad]) + joint.offset_rad
        half = math.ceil(float(np.abs(real).max()) * TICKS_PER_RAD) + 1
        if half > TICKS_MID:
            raise ValueError(f"joint {joint.name!r}: limits {real} exceed one servo turn")
        out[joint.name] = {
            "id": i + 1,
            "drive_mode": 0,
            "homing_offset": int(homing_offsets.get(joint.name, 0)),
            "range_min": TICKS_MID - half,
            "range_max": TICKS_MID + half,
        }
    return out


def write_lerobot_calibration(calibration: dict[str, dict[str, int]], path: str | Path) -> Path:
    """Write the calibration JSON where LeRobot looks: ``<calibration_dir>/<robot id>.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(calibration, indent=4))


class FeetechBusDouble:
    """A test double of the Feetech servo bus of an SO-101, served on a pseudo-terminal."""

    def __init__(
        self,
        description: RobotDescription,
        calibration: dict[str, dict[str, int]],
        scene: str = "tabletop",
        scene_seed: int = 11,
        physics_period_s: float = 0.01,
        initial_q_rad: np.ndarray | None = None,
    ) -> None:
        self.description = description
        names = description.joint_names
        missing = sorted(set(names) - set(calibration))
        if missing:
            raise ValueError(f"calibration lacks motors {missing} (has {sorted(calibration)})")
        self.motors = [
            MotorSpec(
                int(calibration[n]["id"]),
                n,
                int(calibration[n]["homing_offset"]),
                int(calibration[n]["range_min"]),
                int(calibration[n]["range_max"]),
            )
            for n in names
        ]
        self._by_id = {m.motor_id: j for j, m in enumerate(self.motors)}
        self._direction = np.array([j.direction for j in description.joints], dtype=np.float64)
        self._offset = np.array([j.offset_rad for j in description.joints])
        self.physics_period_s = physics_period_s
        self.backend = MujocoSo101Backend(names, 16, scene, scene_seed=scene_seed)
        if initial_q_rad is not None:
            model, data = self.backend.model, self.backend.data
            for name, q in zip(names, initial_q_rad, strict=True):
                data.qpos[model.joint(name).qposadr[0]] = q
            mujoco.mj_forward(model, data)
        self._target = self.backend.joint_positions_rad()
        self.backend.set_targets(self._target)
        self._regs = [self._initial_registers(m) for m in self.motors]
        self._unplugged: set[int] = set()
        self._pending: dict[int, tuple[int, bytes]] = {}  # REG_WRITE until ACTION
        self._lock = threading.Lock()
        self._last_s = time.monotonic()
        self.packets_served = 0
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, name="feetech_bus_double", daemon=True),
            threading.Thread(target=self._physics, name="feetech_bus_physics", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        logger.info("Feetech bus double on %s (%d motors)", self.port, len(self.motors))

    # -- test API
    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.backend.close()
        if self.backend.env is not None:  # free its renderers now, not at interpreter exit
            self.backend.env.close()

    def __enter__(self) -> FeetechBusDouble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def joint_positions_rad(self) -> np.ndarray:
        """The simulated arm's joints (model radians, description order)."""
        with self._lock:
            return self.backend.joint_positions_rad()

    def register(self, joint: str, name: str) -> int:
        """A register's raw (unsigned) value of the motor of ``joint``."""
        with self._lock:
            j = self.description.joint_names.index(joint)
            addr, size = ADDR[name]
            self._refresh_live(j)
            return int.from_bytes(self._regs[j][addr : addr + size], "little")

    def torque_enabled(self) -> dict[str, bool]:
        return {m.joint: bool(self.register(m.joint, "Torque_Enable")) for m in self.motors}

    def unplug(self, joints: list[str] | None = None) -> None:
        """These motors (default: all) stop answering, as after a cut cable or lost power."""
        with self._lock:
            for m in self.motors:
                if joints is None or m.joint in joints:
                    self._unplugged.add(m.motor_id)

    def replug(self) -> None:
        with self._lock:
            self._unplugged.clear()

    # -- registers
    def _initial_registers(self, m: MotorSpec) -> bytearray:
        regs = bytearray(256)

        def put(name: str, value: int) -> None:
            addr, size = ADDR[name]
            regs[addr : addr + size] = int(value).to_bytes(size, "little")

        put("Firmware_Major_Version", FIRMWARE_VERSION[0])
        put("Firmware_Minor_Version", FIRMWARE_VERSION[1])
        put("Model_Number", STS3215_MODEL_NUMBER)
        put("ID", m.motor_id)
        put("Return_Delay_Time", 250)  # factory default: 500 us
        put("Min_Position_Limit", m.range_min)
        put("Max_Position_Limit", m.range_max)
        put("Max_Temperature_Limit", 70)
        put("Max_Torque_Limit", 1000)
        put("P_Coefficient", 32)
        put("I_Coefficient", 0)
        put("D_Coefficient", 32)
        put("Homing_Offset", _sign_magnitude_encode(m.homing_offset, 11))
        put("Acceleration", 0)
        put("Present_Voltage", 120)  # 12.0 V
        put("Present_Temperature", 30)
        return regs

    def _reg(self, j: int, name: str) -> int:
        addr, size = ADDR[name]
        return int.from_bytes(self._regs[j][addr : addr + size], "little")

    def _present_ticks(self, j: int, q_model: float) -> int:
        m = self.motors[j]
        real = self._direction[j] * q_model + self._offset[j]
        # Present = Actual - Homing_Offset: a rewritten offset shifts the reading.
        shift = m.homing_offset - _sign_magnitude_decode(self._reg(j, "Homing_Offset"), 11)
        return int(np.clip(round(m.mid_ticks + real * TICKS_PER_RAD + shift), 0, 4095))

    def _model_rad(self, j: int, present_ticks: int) -> float:
        m = self.motors[j]
        shift = m.homing_offset - _sign_magnitude_decode(self._reg(j, "Homing_Offset"), 11)
        real = (present_ticks - shift - m.mid_ticks) / TICKS_PER_RAD
        return float(self._direction[j] * (real - self._offset[j]))

    def _refresh_live(self, j: int) -> None:
        q = self.backend.joint_positions_rad()[j]
        qd = self.backend.joint_velocities_rad_s()[j]
        regs = self._regs[j]
        ticks = self._present_ticks(j, q)
        vel = round(float(self._direction[j] * qd) * TICKS_PER_RAD)
        vel = max(-32767, min(32767, vel))
        regs[56:58] = _sign_magnitude_encode(ticks, 15).to_bytes(2, "little")
        regs[58:60] = _sign_magnitude_encode(vel, 15).to_bytes(2, "little")
        regs[66] = 1 if abs(vel) > 5 else 0

    def _apply_write(self, j: int, addr: int, data: bytes) -> None:
        torque_before = self._regs[j][40]
        for k, byte in enumerate(data):
            if addr + k < 256 and not LIVE_FIRST <= addr + k < LIVE_END:
                self._regs[j][addr + k] = byte
        torque_on = self._regs[j][40]
        if torque_on and not torque_before:  # the servo holds where it is
            self._refresh_live(j)
            self._regs[j][42:44] = self._regs[j][56:58]
        if torque_on and (addr <= 42 < addr + len(data) or addr <= 40 < addr + len(data)):
            self._set_target_from_goal(j)

    def _set_target_from_goal(self, j: int) -> None:
        goal = _sign_magnitude_decode(self._reg(j, "Goal_Position"), 15)
        lo, hi = self._reg(j, "Min_Position_Limit"), self._reg(j, "Max_Position_Limit")
        if lo < hi:
            goal = min(max(goal, lo), hi)
        self._target[j] = self._model_rad(j, goal)

    # -- physics
    def _physics(self) -> None:
        while not self._stop.wait(self.physics_period_s):
            with self._lock:
                self._advance()

    def _advance(self) -> None:
        now = time.monotonic()
        dt = min(now - self._last_s, 0.1)
        self._last_s = now
        q = self.backend.joint_positions_rad()
        targets = self._target.copy()
        for j in range(len(self.motors)):
            if not self._regs[j][40]:  # torque off: nothing drives the joint
                targets[j] = q[j]
        self.backend.set_targets(targets)
        self.backend.advance(dt)

    # -- the serial side
    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                buf += os.read(self._master, 4096)
            except OSError:  # the slave side closed for good
                if self._stop.wait(0.05):
                    return
                continue
            for packet in _split_packets(buf):
                reply = self._handle(packet)
                if reply:
                    os.write(self._master, reply)

    def _handle(self, packet: bytes) -> bytes:
        motor_id, inst, params = packet[2], packet[4], packet[5:-1]
        with self._lock:
            self.packets_served += 1
            if inst == INST_SYNC_WRITE:
                self._sync_write(params)
                return b""
            if inst == INST_SYNC_READ:
                return self._sync_read(params)
            if motor_id == BROADCAST_ID:
                if inst == INST_PING:
                    return b"".join(
                        _status(m.motor_id, b"")
                        for m in self.motors
                        if m.motor_id not in self._unplugged
                    )
                if inst == INST_ACTION:
                    for j in list(self._pending):
                        self._apply_write(j, *self._pending.pop(j))
                for j in range(len(self.motors)):
                    if inst == INST_WRITE and self.motors[j].motor_id not in self._unplugged:
                        self._apply_write(j, params[0], bytes(params[1:]))
                return b""
            j = self._by_id.get(motor_id)
            if j is None or motor_id in self._unplugged:
                return b""  # nobody answers: the master times out
            return self._instruction(j, motor_id, inst, params)

    def _instruction(self, j: int, motor_id: int, inst: int, params: bytes) -> bytes:
        if inst == INST_PING:
            return _status(motor_id, b"")
        if inst == INST_READ:
            addr, size = params[0], params[1]
            self._refresh_live(j)
            return _status(motor_id, bytes(self._regs[j][addr : addr + size]))
        if inst == INST_WRITE:
            self._apply_write(j, params[0], bytes(params[1:]))
            return _status(motor_id, b"")
        if inst == INST_REG_WRITE:
            self._pending[j] = (params[0], bytes(params[1:]))
            return _status(motor_id, b"")
        if inst == INST_ACTION:
            if j in self._pending:
                self._apply_write(j, *self._pending.pop(j))
            return _status(motor_id, b"")
        logger.warning("bus double: unknown instruction %#x for id %d", inst, motor_id)
        return _status(motor_id, b"", error=0x08)  # instruction error

    def _sync_write(self, params: bytes) -> None:
        addr, size = params[0], params[1]
        body = params[2:]
        for k in range(0, len(body) - size, size + 1):
            j = self._by_id.get(body[k])
            if j is not None and body[k] not in self._unplugged:
                self._apply_write(j, addr, bytes(body[k + 1 : k + 1 + size]))

    def _sync_read(self, params: bytes) -> bytes:
        addr, size = params[0], params[1]
        replies = []
        for motor_id in params[2:]:
            j = self._by_id.get(motor_id)
            if j is None or motor_id in self._unplugged:
                continue
            self._refresh_live(j)
            replies.append(_status(motor_id, bytes(self._regs[j][addr : addr + size])))
        return b"".join(replies)


class FeetechBusDoubleProcess:
    """:class:`FeetechBusDouble` served from a child process of its own, same test API.

    LeRobot's ``scservo_sdk`` gives a ping about 35 ms to be answered. Served from a thread
    of the test process, the double's reply waits for that process's GIL; on a loaded
    2-core host (five ROS nodes importing torch at once beside pytest) it missed every
    deadline for over a second and the arm node gave up. In a process of its own the reply
    waits only for the scheduler. Its methods forward to the double over a pipe.
    """

    def __init__(
        self,
        description: RobotDescription,
        calibration: dict[str, dict[str, int]],
        start_timeout_s: float = 120.0,
        **kwargs: object,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_double_in_child,
            args=(child, description, calibration, kwargs),
            name="feetech_bus_double",
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._conn.poll(start_timeout_s):
            self._process.kill()
            raise TimeoutError(f"the bus double process did not start in {start_timeout_s} s")
        self.port, self.motors = self._answer()
        self.description = description

    def _answer(self) -> object:
        status, value = self._conn.recv()
        if status == "error":
            raise value
        return value

    def _call(self, method: str, *args: object) -> object:
        self._conn.send((method, args))
        return self._answer()

    def joint_positions_rad(self) -> np.ndarray:
        return self._call("joint_positions_rad")

    def register(self, joint: str, name: str) -> int:
        return self._call("register", joint, name)

    def torque_enabled(self) -> dict[str, bool]:
        return self._call("torque_enabled")

    def unplug(self, joints: list[str] | None = None) -> None:
        self._call("unplug", joints)

    def replug(self) -> None:
        self._call("replug")

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError, EOFError):
                self._call("close")
            self._process.join(timeout=10.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> FeetechBusDoubleProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CHILD_NICE = -10  # the double's process priority where the host allows raising it
CHILD_METHODS = ("joint_positions_rad", "register", "torque_enabled", "unplug", "replug")


def _serve_double_in_child(
    conn: Connection,
    description: RobotDescription,
    calibration: dict[str, dict[str, int]],
    kwargs: dict[str, object],
) -> None:
    """The child's loop: build the double, tell its port, answer method calls until close."""
    # A servo answers within microseconds and LeRobot allows ~35 ms: on a host with more
    # runnable processes than cores, a double at the default priority misses that. Raise
    # ours where allowed (root, CAP_SYS_NICE); elsewhere keep the default.
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICE)
    try:
        bus = FeetechBusDouble(description, calibration, **kwargs)
    except Exception as exc:
        conn.send(("error", exc))
        return
    conn.send(("ok", (bus.port, bus.motors)))
    try:
        while True:
            method, args = conn.recv()
            if method == "close":
                break
            if method not in CHILD_METHODS:
                conn.send(("error", ValueError(f"unknown bus double method {method!r}")))
                continue
            try:
                conn.send(("ok", getattr(bus, method)(*args)))
            except Exception as exc:
                conn.send(("error", exc))
    except EOFError:  # the parent went away
        pass
    finally:
        bus.close()
        with contextlib.suppress(OSError):
            conn.send(("ok", None))


def _checksum(body: bytes) -> int:
    return ~sum(body) & 0xFF


def _status(motor_id: int, data: bytes, error: int = 0) -> bytes:
    body = bytes([motor_id, len(data) + 2, error]) + data
    return b"\xff\xff" + body + bytes([_checksum(body)])


def _split_packets(buf: bytearray) -> list[bytes]:
    """Complete, checksummed instruction packets taken off the front of ``buf``."""
    packets = []
    while True:
        start = buf.find(b"\xff\xff")
        if start < 0:
            del buf[: max(0, len(buf) - 1)]
            return packets
        del buf[:start]
        if len(buf) < 4:
            return packets
        total = buf[3] + 4
        if buf[3] < 2:
            del buf[:1]
            continue
        if len(buf) < total:
            return packets
        packet = bytes(buf[:total])
        if packet[-1] == _checksum(packet[2:-1]):
            packets.append(packet)
            del buf[:total]
        else:
            logger.warning("bus double: dropped a packet with a bad checksum")
            del buf[:1]


@dataclass
class BusDoubleConfig:
    calibration_dir: Path = Path("outputs/so101_double_calibration")
    robot_id: str = "executor_arm"  # the LeRobot calibration file: <calibration_dir>/<id>.json
    robot_description_path: str = ""  # "": config/robots/so101.yaml
    scene_seed: int = 11  # the tabletop layout, as sim_arm_node's

    def __post_init__(self) -> None:
        self.calibration_dir = Path(self.calibration_dir)
        if not self.robot_id:
            raise ValueError("robot_id must not be empty")
        if self.scene_seed < 0:
            raise ValueError(f"scene_seed must be >= 0, got {self.scene_seed!r}")


PRESETS: dict[str, BusDoubleConfig] = {
    "debug": BusDoubleConfig(calibration_dir=Path("outputs/so101_double_debug")),
}


@cli_main("feetech-bus-double")
def main(argv: list[str] | None = None) -> int:
    """Serve the double until Ctrl-C / SIGTERM; print the port and the calibration file."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_config(BusDoubleConfig, sys.argv[1:] if argv is None else argv, PRESETS)
    description = RobotDescription.from_yaml(cfg.robot_description_path or default_robot_path())
    calibration = lerobot_calibration_for(description)
    path = write_lerobot_calibration(calibration, cfg.calibration_dir / f"{cfg.robot_id}.json")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FeetechBusDouble(description, calibration, scene_seed=cfg.scene_seed) as bus:
        print(f"port: {bus.port}\ncalibration: {path} (robot id {cfg.robot_id!r})", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
