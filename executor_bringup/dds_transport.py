"""One Fast DDS transport setting for every process of the stack.

Every entry point of ours calls :func:`apply_default_transports` before ``rclpy.init``
(and the launcher applies it to its nodes' environment): all processes of a graph must
agree, and the default must carry a real camera. It points Fast DDS at the profile
shipped in ``config/fastdds_profile.xml`` (``FASTDDS_DEFAULT_PROFILES_FILE``, and
``FASTRTPS_DEFAULT_PROFILES_FILE`` under a Fast DDS 2 distro): shared memory with a segment large
enough for images (LARGE_DATA's size) plus UDPv4 for discovery and other hosts.

Why not the builtin modes: with Fast DDS's ``DEFAULT`` (UDPv4 + a 512 KiB shared-memory
segment) 640x480 rgb8 at 30 Hz arrived at 0.5 Hz, 472 of 481 frames dropped; ``LARGE_DATA``
(TCP for discovery and data, SHM) carried it, but lost discovery between two processes in
3 of 9 sim demo runs on a loaded 2-core host, and a LARGE_DATA participant and a default
one (a stock ``ros2 topic``) never discover each other. The profile discovers over UDP
like DEFAULT, so stock tools see the graph without an export (export the profile file
for them too, to carry large images: see the XML's header).

A choice of the user wins: an exported profile file (either variable) is kept, and so is
an exported ``FASTDDS_BUILTIN_TRANSPORTS`` (e.g. ``LARGE_DATA``), which then applies
without our profile. ``FASTDDS_BUILTIN_TRANSPORTS`` is set to ``DEFAULT`` alongside our
profile (which disables the builtin transports, so the variable has no effect there) so
that every process sees the same environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

logger = logging.getLogger(__name__)

FASTDDS_TRANSPORTS_ENV = "FASTDDS_BUILTIN_TRANSPORTS"
FASTDDS_TRANSPORTS_DEFAULT = "DEFAULT"
# Fast DDS 3 (Kilted) reads the first, Fast DDS 2 the second; Kilted's rmw warns that the
# second is deprecated, so it is set only under the distros that ship Fast DDS 2.
PROFILES_FILE_ENVS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FASTDDS2_DISTROS = ("humble", "iron", "jazzy")
PROFILE_NAME = "fastdds_profile.xml"


def default_profile_path() -> Path | None:
    """``config/fastdds_profile.xml`` from the source tree, else the installed share dir;
    None when neither exists."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "config" / PROFILE_NAME,
        Path(sys.prefix) / "share" / "executor_bringup" / "config" / PROFILE_NAME,
    ):
        if candidate.is_file():
            return candidate
    return None


def apply_default_transports(
    env: MutableMapping[str, str] | None = None, profile: Path | None = None
) -> str:
    """Put the stack's Fast DDS transports into ``env`` (default: this process's
    environment, before ``rclpy.init``) unless the user chose; returns what is in effect:
    ``"profile <path>"`` or ``"builtin <mode>"``.

    ``profile``: the profile file (default :func:`default_profile_path`); without one the
    builtin ``DEFAULT`` applies, with a warning (images beyond 512 KiB then drop).
    """
    env = os.environ if env is None else env
    chosen = next((env[name] for name in PROFILES_FILE_ENVS if env.get(name)), "")
    if chosen:
        if not env.get(FASTDDS_TRANSPORTS_ENV):
            env[FASTDDS_TRANSPORTS_ENV] = FASTDDS_TRANSPORTS_DEFAULT
        return f"profile {chosen}"
    if env.get(FASTDDS_TRANSPORTS_ENV):
        return f"builtin {env[FASTDDS_TRANSPORTS_ENV]}"
    env[FASTDDS_TRANSPORTS_ENV] = FASTDDS_TRANSPORTS_DEFAULT
    profile = profile or default_profile_path()
    if profile is None:
        logger.warning(
            "%s not found (source tree or share/executor_bringup/config): Fast DDS's builtin "
            "DEFAULT transports apply, which drop large images",
            PROFILE_NAME,
        )
        return f"builtin {FASTDDS_TRANSPORTS_DEFAULT}"
    env[PROFILES_FILE_ENVS[0]] = str(profile)
    if env.get("ROS_DISTRO") in FASTDDS2_DISTROS:
        env[PROFILES_FILE_ENVS[1]] = str(profile)
    return f"profile {profile}"


# The transport settings the benchmarks compare (``--transport``).
TRANSPORT_CHOICES = ("default", "fastdds_default", "large_data")


def select_transports(env: MutableMapping[str, str], choice: str) -> str:
    """Put one of TRANSPORT_CHOICES into ``env``, replacing any transport setting there:
    ``default`` the stack's (as :func:`apply_default_transports` with nothing exported),
    ``fastdds_default`` / ``large_data`` Fast DDS's builtin modes. Returns what is in effect.
    """
    if choice not in TRANSPORT_CHOICES:
        raise ValueError(f"transport must be one of {TRANSPORT_CHOICES}, got {choice!r}")
    for name in (FASTDDS_TRANSPORTS_ENV, *PROFILES_FILE_ENVS):
        env.pop(name, None)
    if choice != "default":
        env[FASTDDS_TRANSPORTS_ENV] = {"fastdds_default": "DEFAULT", "large_data": "LARGE_DATA"}[
            choice
        ]
    return apply_default_transports(env)
