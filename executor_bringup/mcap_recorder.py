"""ROS 2 messages into an MCAP file as rosbag2 writes them, on a writer thread.

The file follows the MCAP ``ros2`` profile of rosbag2's MCAP storage, so Foxglove,
``ros2 bag info`` / ``ros2 bag play`` and ``mcap_ros2.reader`` open it:

- schemas encoded ``ros2msg``, named ``<pkg>/<msg|action>/<Type>``: the type's own
  definition (its ``.msg`` file from the installed interface packages,
  ``<prefix>/share/<pkg>/msg/<Type>.msg`` for each prefix of ``AMENT_PREFIX_PATH`` and the
  Python prefix; for an action's ``_Goal``, ``_Result`` and ``_Feedback`` the matching part of
  its ``.action`` file), followed by every type it uses, recursively, each after a line of
  80 ``=`` and a line ``MSG: <pkg>/msg/<Type>`` (rosbag2's "complete message definition");
- channels with message encoding ``cdr``; the payload is what
  ``rclpy.serialization.serialize_message`` makes of the message, or the serialized bytes a
  raw subscription delivered;
- each channel's metadata ``offered_qos_profiles``: the QoS the topic is offered with, as
  rosbag2 writes it (:func:`offered_qos_yaml`), from the ``offered_qos`` given to ``open``
  (``[]`` for a topic not in it, as rosbag2 writes a topic without publishers);
  ``ros2 bag play`` publishes each topic with it (without it: reliable, volatile), so a
  latched topic replays latched. No ``rosbag2`` metadata record: rosbag2's MCAP storage
  reads a lone file without one, decoding the profiles in its current metadata version
  (9: policies by name, Jazzy on; a ``rosbag2`` record without ``serialized_metadata``
  would mean 8). Humble's and Iron's ``ros2 bag play`` read only 8's integer policies:
  there, give the topics' QoS with ``--qos-profile-overrides-path``;
- log time = receive time in ns of the node's clock (non-decreasing in file order unless a
  caller gives its own), publish time the same; zstd-compressed chunks with indexes, a
  summary and statistics, metadata records.

:class:`McapRecorder` writes one file at a time (``open`` ... ``close``). ``write`` only
puts the message on a bounded queue (callbacks never wait for the disk; past
``max_queued`` messages or ``max_queued_bytes`` of them, 4000 and 256 MiB, further ones are
dropped and counted); the writer thread serializes and writes. The file appears at its
path only when complete: it is written to a hidden temporary beside it and renamed
(``executor_core.atomic_io.atomic_path``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer
from rclpy.duration import Duration
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message

from executor_core.atomic_io import atomic_path

logger = logging.getLogger(__name__)

DELIMITER = "=" * 80
ACTION_PARTS = ("Goal", "Result", "Feedback")  # the order of the .action file's sections
LIBRARY = "executor_stack mcap_recorder"
QOS_METADATA_KEY = "offered_qos_profiles"  # rosbag2's channel metadata key


def type_name(msg_class: type) -> str:
    """``sensor_msgs/msg/Image``, ``executor_interfaces/action/ExecuteTask_Goal``."""
    package, kind = msg_class.__module__.split(".")[:2]
    return f"{package}/{kind}/{msg_class.__name__}"


def share_dirs() -> list[Path]:
    """Where interface definitions are installed: each ament prefix's and Python's share/."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [Path(p) / "share" for p in dict.fromkeys([*prefixes, sys.prefix])]


def _definition_file(package: str, kind: str, filename: str) -> Path:
    dirs = share_dirs()
    for share in dirs:
        path = share / package / kind / filename
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no {package}/{kind}/{filename} under {[str(d) for d in dirs]}: the interface "
        f"package {package!r} is not installed with its definitions"
    )


def own_definition(msg_class: type) -> str:
    """The type's own .msg text (for an action part, that section of the .action file)."""
    package, kind = msg_class.__module__.split(".")[:2]
    if kind != "action":
        return _definition_file(package, kind, f"{msg_class.__name__}.{kind}").read_text()
    action, _, part = msg_class.__name__.rpartition("_")
    if part not in ACTION_PARTS:
        raise ValueError(f"{type_name(msg_class)} is not an action's goal, result or feedback")
    text = _definition_file(package, kind, f"{action}.action").read_text()
    sections = re.split(r"^---[ \t]*$", text, flags=re.MULTILINE)
    return sections[ACTION_PARTS.index(part)].strip("\n") + "\n"


def _used_classes(msg_class: type) -> list[type]:
    """The message classes of the fields (inside arrays and sequences too), in order."""
    used = []
    for slot in msg_class.SLOT_TYPES:
        while hasattr(slot, "value_type"):  # Array, (Un)BoundedSequence
            slot = slot.value_type
        if hasattr(slot, "namespaces"):  # NamespacedType: a message
            module = __import__(".".join(slot.namespaces), fromlist=[slot.name])
            used.append(getattr(module, slot.name))
    return used


@cache
def message_definition(msg_class: type) -> str:
    """The complete ``ros2msg`` definition of ``msg_class`` (its own text, then each type
    it uses, depth first, once)."""
    seen: dict[str, type] = {}
    pending = list(reversed(_used_classes(msg_class)))
    while pending:
        dep = pending.pop()
        if type_name(dep) not in seen:
            seen[type_name(dep)] = dep
            pending.extend(reversed(_used_classes(dep)))
    parts = [own_definition(msg_class).rstrip("\n")]
    for name, dep in seen.items():
        parts.append(f"{DELIMITER}\nMSG: {name}\n{own_definition(dep).rstrip(chr(10))}")
    return "\n".join(parts) + "\n"


def _sec_nsec(duration: Duration) -> dict[str, int]:
    ns = duration.nanoseconds
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def qos_entry(qos: QoSProfile) -> dict[str, Any]:
    """One profile as rosbag2 writes it: policies by their rmw names (``keep_last``,
    ``best_effort``, ``transient_local``, ``system_default`` ...), durations as sec/nsec."""
    return {
        "history": qos.history.short_key,
        "depth": qos.depth,
        "reliability": qos.reliability.short_key,
        "durability": qos.durability.short_key,
        "deadline": _sec_nsec(qos.deadline),
        "lifespan": _sec_nsec(qos.lifespan),
        "liveliness": qos.liveliness.short_key,
        "liveliness_lease_duration": _sec_nsec(qos.liveliness_lease_duration),
        "avoid_ros_namespace_conventions": qos.avoid_ros_namespace_conventions,
    }


def offered_qos_yaml(profiles: Sequence[QoSProfile]) -> str:
    """rosbag2's ``offered_qos_profiles`` text: a YAML list, one map per offered profile."""
    return yaml.safe_dump([qos_entry(p) for p in profiles], sort_keys=False)


@dataclass
class _Message:
    topic: str
    msg_class: type
    payload: Any  # a message, or its serialized bytes
    log_time_ns: int
    size: int  # bytes, about


def approx_size(payload: Any) -> int:
    """About how many bytes a queued message holds (its image data, mostly)."""
    if isinstance(payload, bytes):
        return len(payload)
    data = getattr(payload, "data", None)
    return 256 + (len(data) if hasattr(data, "__len__") else 0)


@dataclass
class _Open:
    path: Path
    qos_yaml: dict[str, str]  # topic -> its offered_qos_profiles


@dataclass
class _Close:
    metadata: dict[str, dict[str, str]]
    done: Future = field(default_factory=Future)


class _McapFile:
    """One file being written (at a temporary path until :meth:`close`)."""

    def __init__(self, path: Path, qos_yaml: dict[str, str]) -> None:
        self.path, self._qos_yaml = path, qos_yaml
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(path))
        stream = self._stack.enter_context(tmp.open("wb"))  # closed before the rename
        self._writer = Writer(stream, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library=LIBRARY)
        self._schemas: dict[type, int] = {}
        self._channels: dict[str, tuple[int, type]] = {}
        self._sequence: dict[int, int] = {}
        self.count = 0

    def add(self, msg: _Message) -> None:
        channel = self._channel(msg.topic, msg.msg_class)
        data = msg.payload if isinstance(msg.payload, bytes) else serialize_message(msg.payload)
        self._sequence[channel] += 1
        self._writer.add_message(
            channel, msg.log_time_ns, data, msg.log_time_ns, self._sequence[channel]
        )
        self.count += 1

    def _channel(self, topic: str, msg_class: type) -> int:
        if topic in self._channels:
            channel, known = self._channels[topic]
            if known is not msg_class:
                raise ValueError(f"{topic!r} carries {type_name(known)}, not {msg_class}")
            return channel
        if msg_class not in self._schemas:
            text = message_definition(msg_class).encode()
            self._schemas[msg_class] = self._writer.register_schema(
                type_name(msg_class), SchemaEncoding.ROS2, text
            )
        qos = self._qos_yaml.get(topic, offered_qos_yaml([]))
        channel = self._writer.register_channel(
            topic, MessageEncoding.CDR, self._schemas[msg_class], {QOS_METADATA_KEY: qos}
        )
        self._channels[topic] = (channel, msg_class)
        self._sequence[channel] = 0
        return channel

    def close(self, metadata: dict[str, dict[str, str]]) -> Path:
        for name, data in metadata.items():
            self._writer.add_metadata(name, data)
        self._writer.finish()
        self._stack.close()  # closes the stream, renames the temporary into place
        return self.path

    def abort(self, exc: BaseException) -> None:
        """Remove the temporary; nothing appears at the path."""
        with contextlib.suppress(Exception):
            self._stack.__exit__(type(exc), exc, exc.__traceback__)


class McapRecorder:
    """Writes one MCAP file at a time on its own thread; ``write`` never blocks."""

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.time_ns,
        max_queued: int = 4000,
        max_queued_bytes: int = 256 * 2**20,
    ) -> None:
        if max_queued < 1 or max_queued_bytes < 1:
            raise ValueError(
                f"max_queued and max_queued_bytes must be >= 1, got {max_queued!r} and "
                f"{max_queued_bytes!r}"
            )
        self._clock_ns = clock_ns
        self._queue: queue.Queue[_Message | _Open | _Close | None] = queue.Queue()
        self._max_queued, self._max_queued_bytes = max_queued, max_queued_bytes
        self._lock = threading.Lock()
        self._open = False
        self._queued = 0  # messages on the queue
        self._queued_bytes = 0
        self._last_ns = 0
        self.dropped = 0  # of the file being written
        self._error = ""  # why the current file failed, "" while it is fine
        self._thread = threading.Thread(target=self._run, name="mcap_writer", daemon=True)
        self._thread.start()

    def open(self, path: Path, offered_qos: Mapping[str, QoSProfile] | None = None) -> None:
        """Start a file at ``path`` (written when closed); closes nothing else.

        ``offered_qos``: the QoS each topic (its name in the file) is offered with.
        """
        qos_yaml = {topic: offered_qos_yaml([q]) for topic, q in (offered_qos or {}).items()}
        with self._lock:
            if self._open:
                raise RuntimeError("a recording is already open")
            self._open, self.dropped, self._error = True, 0, ""
        self._queue.put(_Open(Path(path), qos_yaml))

    def write(
        self, topic: str, msg_class: type, payload: Any, log_time_ns: int | None = None
    ) -> bool:
        """Queue a message (not to be changed afterwards) or its serialized bytes.

        Logged now (the recorder's clock, non-decreasing) unless ``log_time_ns`` is given.
        False when no file is open, or when the writer is ``max_queued`` messages or
        ``max_queued_bytes`` behind (dropped and counted).
        """
        size = approx_size(payload)
        with self._lock:
            if not self._open:
                return False
            full = self._queued_bytes + size > self._max_queued_bytes
            if self._queued >= self._max_queued or (full and self._queued):
                self.dropped += 1
                return False
            if log_time_ns is None:
                log_time_ns = self._last_ns = max(self._last_ns, self._clock_ns())
            self._queued += 1
            self._queued_bytes += size
            self._queue.put(_Message(topic, msg_class, payload, log_time_ns, size))
        return True

    def close(self, metadata: dict[str, dict[str, str]], timeout_s: float = 30.0) -> Path:
        """Finish the file (after everything queued) and return its path.

        Blocks the caller (the goal's worker) until written; ``OSError`` naming the file
        and the cause when it could not be written (nothing is left at its path).
        """
        with self._lock:
            self._open = False
        close = _Close(metadata)
        self._queue.put(close)
        return close.done.result(timeout=timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        current: _McapFile | None = None
        while (item := self._queue.get()) is not None:
            if isinstance(item, _Message):
                with self._lock:
                    self._queued -= 1
                    self._queued_bytes -= item.size
            try:
                current = self._handle(item, current)
            except Exception as exc:  # a full disk, a missing definition: this file only
                path = current.path if current is not None else getattr(item, "path", None)
                if current is not None:
                    current.abort(exc)
                self._error = f"could not write the recording {path}: {exc!r}"
                logger.error("%s", self._error)
                current = None
                if isinstance(item, _Close):
                    item.done.set_exception(OSError(self._error or repr(exc)))

    def _handle(self, item: _Message | _Open | _Close, current: _McapFile | None) -> Any:
        if isinstance(item, _Open):
            if current is not None:
                current.abort(RuntimeError("reopened"))
            self._error = ""
            return _McapFile(item.path, item.qos_yaml)
        if isinstance(item, _Message):
            if current is not None:
                current.add(item)
            return current
        if current is None:
            item.done.set_exception(OSError(self._error or "no recording was open"))
            return None
        if self.dropped:
            logger.warning(
                "%s: dropped %d message(s), the writer fell behind", current.path, self.dropped
            )
        item.done.set_result(current.close(item.metadata))
        return None
