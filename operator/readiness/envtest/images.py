"""Container images for the local node, built with buildah into a content-addressed cache; no registry.

Four images: ``python-base`` (Debian bookworm minbase from debootstrap, standing in for the public
``python:3.11-slim-bookworm`` that no reachable registry serves), ``operator`` (the project's own
Dockerfile on that base), ``pause`` (containerd's sandbox image) and ``workload`` (busybox, for end-to-end
tests). Each is saved as a docker-archive tarball named after a hash of everything that goes into it, in
``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/images/``: a warm run hashes a few hundred files and
builds nothing, and a changed input gives a new archive (for the operator also a new tag, so a Helm
upgrade rolls the Deployment).

buildah keeps its storage, run state and configuration in a scratch directory under the cache, created
empty for a build and deleted after it, and runs in a private mount namespace with a tmpfs over
``/var/lib`` (its blob-info cache is hard-wired to ``/var/lib/containers`` for root): a build leaves nothing
on the host but the archives. ``python -m readiness.envtest.images [NAME...]`` builds and prints
``name ref path`` lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from readiness.envtest.binaries import cache_root

PYTHON_BASE_REF = "localhost/readiness-python-base:bookworm"
OPERATOR_REPOSITORY = "localhost/readiness-operator"
"""The operator's tag is ``dev-<hash12>`` of its inputs: see ``ImageArchive.tag``."""
PAUSE_REF = "localhost/readiness-pause:3.10"
WORKLOAD_REF = "localhost/readiness-workload:1.0"

IMAGE_NAMES = ("python-base", "operator", "pause", "workload")
"""In build order: the operator is built on python-base."""

REPO_ROOT = Path(__file__).resolve().parents[3]
HACK_DIR = REPO_ROOT / "hack" / "images"

_RECIPES = {"python-base": 2, "operator": 1, "pause": 1, "workload": 1}
"""Part of each hash: bump an image's number when its build steps in this module change."""
_OPERATOR_CONTEXT = ("Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml", "README.md")
"""With ``operator/``: what ``.dockerignore`` lets into the build context."""
_SKIPPED_DIRS = ("__pycache__",)
_SKIPPED_SUFFIXES = (".egg-info",)
_HEARTBEAT_SECONDS = 30.0
_ERROR_TAIL_LINES = 40
_APT_SOURCES = Path("/etc/apt")
_TOOLS = {"python-base": ("debootstrap", "tar"), "pause": ("gcc",)}
"""What each build runs besides buildah and unshare."""
_PACKAGES_HINT = "apt-get install -y buildah debootstrap busybox-static gcc libc6-dev"


class ImageError(RuntimeError):
    """An image could not be built; the message says which step failed and shows its output's tail."""


@dataclass(frozen=True)
class ImageArchive:
    """One image: its reference and the docker-archive tarball holding it (``ctr images import``-able)."""

    name: str
    ref: str
    archive: Path

    @property
    def repository(self) -> str:
        """``ref`` without its tag: the Helm chart's ``image.repository``."""
        return self.ref.rpartition(":")[0]

    @property
    def tag(self) -> str:
        """The Helm chart's ``image.tag`` (with ``image.pullPolicy=Never``: the node has no registry)."""
        return self.ref.rpartition(":")[2]


@dataclass(frozen=True)
class ImageSettings:
    cache_dir: Path | None = None
    """Where the archives go. None: ``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/images``."""

    debian_suite: str = "bookworm"
    """The base's Debian release. bookworm's python3 is 3.11, the oldest that pyproject's
    ``requires-python`` allows and the Python of the Dockerfile's default ``python:3.11-slim-bookworm``."""

    debian_packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    """``debootstrap --include``: python3-venv for the Dockerfile's ``python -m venv``, ca-certificates
    for the trust store that pip inside the build uses."""

    debian_mirror: str | None = None
    """None: the machine's apt mirror for ``debian_suite`` (from ``/etc/apt/sources.list`` and
    ``sources.list.d``), which is reachable wherever apt works. Not hashed: the same suite from another
    mirror is the same packages."""

    ca_bundle: Path = Path("/etc/ssl/certs/ca-certificates.crt")
    """Copied over the base's own bundle so that pip in a build trusts what the host trusts (a
    TLS-inspecting egress proxy's CA, say). Hashed: a changed bundle rebuilds the base."""

    busybox: Path = Path("/bin/busybox")
    """The workload's only binary; must be statically linked (Debian's ``busybox-static``), since the image
    has no libc. Hashed."""

    storage_driver: str = "overlay"
    """buildah's storage driver. overlay works on ext4 and is fast; ``vfs`` works on any filesystem
    (needed if the cache is itself on overlayfs) but copies every layer in full: slower, a few GB more
    while building."""

    keep_archives: int = 2
    """Archives kept per image, most recently used first: the current one and the one before (switching
    back to another branch or checkout then builds nothing). Older ones are deleted after a build."""

    @property
    def archive_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return cache_root() / "images"


# -- what goes into each image, and its hash ------------------------------------------------------------


def input_hash(files: Mapping[str, Path], params: Mapping[str, str] | None = None) -> str:
    """sha256 over ``params`` and, per build-context name, the file's content and executable bit (what
    COPY keeps); a symlink counts by its target. Order-independent, length-prefixed: unambiguous."""
    digest = hashlib.sha256()
    for key, value in sorted((params or {}).items()):
        digest.update(_framed(f"param {key}", value.encode()))
    for name, path in sorted(files.items()):
        if path.is_symlink():
            digest.update(_framed(f"link {name}", os.readlink(path).encode()))
        else:
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(_framed(f"file {name} {executable}", path.read_bytes()))
    return digest.hexdigest()


def _framed(label: str, data: bytes) -> bytes:
    return f"{label}\0{len(data)}\0".encode() + data


def tree_files(root: Path, under: str) -> dict[str, Path]:
    """Every file below ``root/under``, by its path relative to ``root``, without ``__pycache__`` and
    ``*.egg-info`` directories: the ``.dockerignore`` rules, which keep build by-products out."""
    files: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(root / under):
        subdirs[:] = sorted(d for d in subdirs
                            if d not in _SKIPPED_DIRS and not d.endswith(_SKIPPED_SUFFIXES))
        for name in names:
            path = Path(directory) / name
            files[path.relative_to(root).as_posix()] = path
    return files


def operator_context(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """The files of the operator's build context: the Dockerfile, its inputs and ``operator/``."""
    files = {name: repo_root / name for name in _OPERATOR_CONTEXT}
    files.update(tree_files(repo_root, "operator"))
    return files


def image_keys(settings: ImageSettings, repo_root: Path = REPO_ROOT) -> dict[str, str]:
    """Each image's input hash; the operator's includes the base's (it is built on it)."""
    hack = repo_root / "hack" / "images"
    base = input_hash(
        {"Containerfile": hack / "python-base" / "Containerfile", "ca-certificates.crt": settings.ca_bundle},
        {"recipe": str(_RECIPES["python-base"]), "suite": settings.debian_suite,
         "variant": "minbase", "include": ",".join(settings.debian_packages)},
    )
    return {
        "python-base": base,
        "operator": input_hash(operator_context(repo_root),
                               {"recipe": str(_RECIPES["operator"]), "base": base}),
        "pause": input_hash(tree_files(hack, "pause"), {"recipe": str(_RECIPES["pause"])}),
        "workload": input_hash({**tree_files(hack, "workload"), "busybox": settings.busybox},
                               {"recipe": str(_RECIPES["workload"])}),
    }


def planned_images(settings: ImageSettings, repo_root: Path = REPO_ROOT) -> dict[str, ImageArchive]:
    """Where each image's archive is (or will be) and its reference; nothing is built."""
    keys = image_keys(settings, repo_root)
    refs = {"python-base": PYTHON_BASE_REF, "operator": f"{OPERATOR_REPOSITORY}:dev-{keys['operator'][:12]}",
            "pause": PAUSE_REF, "workload": WORKLOAD_REF}
    return {name: ImageArchive(name, refs[name], settings.archive_dir / f"{name}-{keys[name][:16]}.tar")
            for name in IMAGE_NAMES}


# -- the public entry point -----------------------------------------------------------------------------


def ensure_images(progress: TextIO | None = None, settings: ImageSettings | None = None,
                  names: Collection[str] | None = None) -> dict[str, ImageArchive]:
    """The archives of ``names`` (default: all four), by name, building whichever is missing, and the
    operator's base when the operator must be built. A warm call reads no more than the inputs."""
    settings = settings or ImageSettings()
    wanted = tuple(names or IMAGE_NAMES)
    unknown = sorted(set(wanted) - set(IMAGE_NAMES))
    if unknown:
        raise ImageError(f"unknown image(s) {', '.join(unknown)}: choose from {', '.join(IMAGE_NAMES)}")
    planned = planned_images(settings)
    if _missing(planned, wanted):
        with _build_lock(settings.archive_dir):
            missing = _missing(planned, wanted)  # another process may have built them meanwhile
            if missing:
                _build_all(missing, planned, settings, progress or sys.stderr)
    for name in wanted:
        os.utime(planned[name].archive)  # "recently used", for the pruning of old archives
    return {name: planned[name] for name in wanted}


def _missing(planned: Mapping[str, ImageArchive], wanted: Iterable[str]) -> list[str]:
    """What must be built for ``wanted``, in build order: the base too if the operator is missing."""
    needed = set(wanted)
    if "operator" in needed and not planned["operator"].archive.is_file():
        needed.add("python-base")
    return [name for name in IMAGE_NAMES if name in needed and not planned[name].archive.is_file()]


@contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """Serialise builds across processes (two test runs starting at once share one build)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# -- building -------------------------------------------------------------------------------------------


def _build_all(names: list[str], planned: Mapping[str, ImageArchive], settings: ImageSettings,
               out: TextIO) -> None:
    _check_prerequisites(names)
    for stale in settings.archive_dir.glob("*.tar.tmp-*"):  # an interrupted push (we hold the lock)
        stale.unlink()
    with _workspace(settings) as buildah:
        for name in names:
            _build_one(planned[name], planned, settings, buildah, out)


def _build_one(image: ImageArchive, planned: Mapping[str, ImageArchive], settings: ImageSettings,
               buildah: _Buildah, out: TextIO) -> None:
    print(f"==> building {image.name} ({image.ref}) ...", file=out, flush=True)
    started = time.monotonic()
    log = settings.archive_dir / "logs" / f"{image.name}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_bytes(b"")
    _BUILDERS[image.name](_Step(buildah, settings, planned, image, log, out))
    buildah.push_archive(image.ref, image.archive, log, out)
    _prune(image, settings.keep_archives)
    size = image.archive.stat().st_size / 1e6
    print(f"==> built {image.name} in {time.monotonic() - started:.0f}s ({size:.0f} MB): {image.archive}",
          file=out, flush=True)


@dataclass(frozen=True)
class _Step:
    """What a builder needs: the buildah workspace, the settings, every image's plan, and where to log."""

    buildah: _Buildah
    settings: ImageSettings
    planned: Mapping[str, ImageArchive]
    image: ImageArchive
    log: Path
    out: TextIO

    def context(self) -> Path:
        """A fresh build-context directory for this image inside the workspace."""
        path = self.buildah.work / "context" / self.image.name
        path.mkdir(parents=True)
        return path

    def run(self, command: Sequence[str]) -> None:
        _run(command, self.log, self.out, self.buildah.env)


def _build_python_base(step: _Step) -> None:
    """debootstrap a minbase into a tar, then ``FROM scratch`` + ``ADD rootfs.tar /`` (keeps ownership)."""
    context = step.context()
    rootfs = context / "rootfs"
    settings = step.settings
    mirror = settings.debian_mirror or apt_mirror(settings.debian_suite)
    _debootstrap(step, ["debootstrap", "--variant=minbase", f"--include={','.join(settings.debian_packages)}",
                        settings.debian_suite, str(rootfs), mirror], rootfs)
    _tidy_rootfs(rootfs, settings.ca_bundle)
    step.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(context / "rootfs.tar"), "."])
    shutil.rmtree(rootfs)
    step.buildah.bud(context, step.image.ref, HACK_DIR / "python-base" / "Containerfile", step.log, step.out)


def _debootstrap(step: _Step, command: list[str], rootfs: Path) -> None:
    """Run debootstrap, twice if need be: a mirror hiccup (seen once: exit 2 right after "Checking
    component main") should not fail a test session. Its own log, which says why, is kept by ours."""
    for attempt in (1, 2):
        shutil.rmtree(rootfs, ignore_errors=True)
        try:
            step.run(_private_mounts(command, hide_var_lib=False))
            return
        except ImageError:
            own_log = rootfs / "debootstrap" / "debootstrap.log"
            if own_log.is_file():
                shutil.copyfile(own_log, step.log.with_name("debootstrap.log"))
            if attempt == 2:
                raise
            print("    debootstrap failed, retrying once", file=step.out, flush=True)


_UNWANTED = (
    "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*", "dev/*",
    "var/log/**/*.log", "var/log/apt/*", "etc/resolv.conf", "etc/hostname", "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old", "var/cache/ldconfig/aux-cache",
    "usr/share/man/*", "usr/share/locale/*", "usr/share/doc/*/*",  # about 50 MB, as in debian:*-slim
)
"""What debootstrap leaves in a rootfs that an image should not hold: downloaded .debs, apt lists,
device nodes (the runtime provides /dev), logs, the host's resolv.conf and hostname; and documentation."""
_KEPT = ("copyright", "locale.alias")
"""Names kept wherever ``_UNWANTED`` matches them: licences, and what glibc reads."""


def _tidy_rootfs(rootfs: Path, ca_bundle: Path) -> None:
    """Add ``python`` (the Dockerfile runs ``python -m venv``) and the host's CA bundle; drop
    ``_UNWANTED``."""
    python = rootfs / "usr/bin/python"
    if not python.exists():
        python.symlink_to("python3")
    bundle = rootfs / "etc/ssl/certs/ca-certificates.crt"
    bundle.unlink(missing_ok=True)
    shutil.copyfile(ca_bundle, bundle)
    real_root = rootfs.resolve()
    for pattern in _UNWANTED:
        for path in rootfs.glob(pattern):
            # glob follows symlinks: an absolute one in the rootfs would lead it into the host's files.
            if path.name in _KEPT or not path.parent.resolve().is_relative_to(real_root):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _build_operator(step: _Step) -> None:
    """The project's Dockerfile, its ``PYTHON_IMAGE`` the base (pulled from its archive if not in this
    workspace's storage); pip in the build reaches PyPI through the base's trust store."""
    base = step.planned["python-base"]
    if not step.buildah.has_image(base.ref):
        step.buildah.pull_archive(base.archive, step.log, step.out)
    step.buildah.bud(REPO_ROOT, step.image.ref, REPO_ROOT / "Dockerfile", step.log, step.out,
                     build_args={"PYTHON_IMAGE": base.ref})


def _build_pause(step: _Step) -> None:
    context = step.context()
    source = HACK_DIR / "pause" / "pause.c"
    step.run(["gcc", "-static", "-O2", "-s", "-o", str(context / "pause"), str(source)])
    step.buildah.bud(context, step.image.ref, HACK_DIR / "pause" / "Containerfile", step.log, step.out)


def _build_workload(step: _Step) -> None:
    context = step.context()
    _require_static(step.settings.busybox)
    shutil.copytree(HACK_DIR / "workload", context, dirs_exist_ok=True)
    shutil.copy2(step.settings.busybox, context / "busybox")
    step.buildah.bud(context, step.image.ref, context / "Containerfile", step.log, step.out)


_BUILDERS: dict[str, Callable[[_Step], None]] = {
    "python-base": _build_python_base, "operator": _build_operator, "pause": _build_pause,
    "workload": _build_workload,
}


def _require_static(binary: Path) -> None:
    """Refuse a dynamically linked ELF (one with a PT_INTERP program header): in a ``FROM scratch`` image
    it fails with a baffling "no such file or directory"."""
    data = binary.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        raise ImageError(f"{binary} is not a 64-bit ELF executable")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        if struct.unpack_from("<I", data, phoff + index * phentsize)[0] == 3:  # PT_INTERP
            raise ImageError(f"{binary} is dynamically linked: install busybox-static ({_PACKAGES_HINT})")


def _prune(image: ImageArchive, keep: int) -> None:
    """Delete all but the ``keep`` most recently used archives of ``image`` (never the current one)."""
    others = [p for p in image.archive.parent.glob(f"{image.name}-*.tar") if p != image.archive]
    for old in sorted(others, key=lambda p: p.stat().st_mtime, reverse=True)[max(keep - 1, 0):]:
        old.unlink(missing_ok=True)


def _check_prerequisites(names: Iterable[str]) -> None:
    if os.geteuid() != 0:
        raise ImageError("building images needs root (debootstrap; buildah with its storage in the cache)")
    tools = {"buildah", "unshare"} | {tool for name in names for tool in _TOOLS.get(name, ())}
    absent = sorted(tool for tool in tools if shutil.which(tool) is None)
    if absent:
        raise ImageError(f"not on PATH: {', '.join(absent)} ({_PACKAGES_HINT})")


# -- the Debian mirror ----------------------------------------------------------------------------------


def apt_mirror(suite: str, apt_dir: Path = _APT_SOURCES) -> str:
    """The first ``deb`` URI in the machine's apt sources that serves ``suite`` with ``main``."""
    for path in _apt_source_files(apt_dir):
        entries = _deb822_entries(path.read_text()) if path.suffix == ".sources" else \
            _one_line_entries(path.read_text())
        for uris, suites, components in entries:
            if suite in suites and "main" in components and uris:
                return uris[0]
    raise ImageError(f"no apt source for {suite} main in {apt_dir}: set ImageSettings.debian_mirror")


def _apt_source_files(apt_dir: Path) -> list[Path]:
    listed = sorted(p for p in (apt_dir / "sources.list.d").glob("*") if p.suffix in {".list", ".sources"})
    return [p for p in [apt_dir / "sources.list", *listed] if p.is_file()]


_AptEntry = tuple[list[str], list[str], list[str]]
"""URIs, suites, components of one ``deb`` source."""


def _one_line_entries(text: str) -> list[_AptEntry]:
    """``deb [options] URI SUITE COMPONENT...`` lines."""
    entries: list[_AptEntry] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words.pop(0).endswith("]"):
                pass
        if len(words) >= 2:
            entries.append(([words[0]], [words[1]], words[2:]))
    return entries


def _deb822_entries(text: str) -> list[_AptEntry]:
    """``Types: deb`` stanzas of a ``.sources`` file (blank-line separated; continuation lines indented)."""
    entries: list[_AptEntry] = []
    for stanza in _stanzas(text):
        if "deb" in stanza.get("types", "").split() and stanza.get("enabled", "yes") != "no":
            entries.append((stanza.get("uris", "").split(), stanza.get("suites", "").split(),
                            stanza.get("components", "").split()))
    return entries


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = [{}]
    key = ""
    for line in text.splitlines():
        if not line.strip():
            stanzas.append({})
        elif line.startswith("#"):
            continue
        elif line[0].isspace() and key:
            stanzas[-1][key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanzas[-1][key] = value.strip()
    return [stanza for stanza in stanzas if stanza]


# -- buildah, contained ---------------------------------------------------------------------------------

_HIDE_VAR_LIB = 'mount -t tmpfs -o mode=0700 tmpfs /var/lib && exec "$@"'


def _private_mounts(command: Sequence[str], *, hide_var_lib: bool) -> list[str]:
    """``command`` in its own mount namespace, so what it mounts (debootstrap's /proc, buildah's overlays)
    goes when it exits, even if it crashes. ``hide_var_lib`` puts a tmpfs over /var/lib in there, which
    catches what buildah writes to /var/lib/containers whatever its flags say."""
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    if not hide_var_lib:
        return [*unshare, *command]
    return [*unshare, "sh", "-c", _HIDE_VAR_LIB, "sh", *command]


class _Buildah:
    """buildah with its storage, run state, temporary files and configuration all in ``work``."""

    def __init__(self, work: Path, driver: str) -> None:
        self.work = work
        self._flags = ["--root", str(work / "storage"), "--runroot", str(work / "run"),
                       "--storage-driver", driver]
        # If the cache itself lies under /var/lib, hiding /var/lib would hide the workspace too.
        self._hide_var_lib = Path("/var/lib") not in work.resolve().parents
        # The CNI backend, its config in here: else buildah creates /etc/cni/net.d or
        # /etc/containers/networks and /run/containers/networks, even for FROM-scratch builds.
        conf = work / "containers.conf"
        conf.write_text(f'[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "{work / "cni"}"\n')
        (work / "tmp").mkdir()
        # The environment of every command in the workspace. LIBMOUNT_UTAB: else mount(8), which
        # debootstrap runs, creates /run/mount on the host.
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "TMPDIR": str(work / "tmp"),
                    "LIBMOUNT_UTAB": str(work / "utab")}

    def command(self, *args: str) -> list[str]:
        return _private_mounts(["buildah", *self._flags, *args], hide_var_lib=self._hide_var_lib)

    def has_image(self, ref: str) -> bool:
        result = subprocess.run(self.command("inspect", "--type", "image", ref), capture_output=True,
                                env=self.env, check=False)
        return result.returncode == 0

    def bud(self, context: Path, ref: str, containerfile: Path, log: Path, out: TextIO, *,
            build_args: Mapping[str, str] | None = None) -> None:
        """``buildah bud`` with chroot isolation (no runc, no cgroups, no rlimit trouble); never pulls."""
        args = [arg for key, value in (build_args or {}).items() for arg in ("--build-arg", f"{key}={value}")]
        _run(self.command("bud", "--isolation", "chroot", "--pull=never", "--layers=false", *args,
                          "-f", str(containerfile), "-t", ref, str(context)), log, out, self.env)

    def pull_archive(self, archive: Path, log: Path, out: TextIO) -> None:
        _run(self.command("pull", "--quiet", f"docker-archive:{archive}"), log, out, self.env)

    def push_archive(self, ref: str, archive: Path, log: Path, out: TextIO) -> None:
        """Write ``ref`` as a docker-archive tagged ``ref``, atomically: a present archive is complete."""
        partial = archive.with_name(f"{archive.name}.tmp-{os.getpid()}")
        partial.unlink(missing_ok=True)
        _run(self.command("push", "--quiet", ref, f"docker-archive:{partial}:{ref}"), log, out, self.env)
        os.replace(partial, archive)


@contextmanager
def _workspace(settings: ImageSettings) -> Iterator[_Buildah]:
    """An empty buildah workspace under the cache (we hold the build lock), deleted afterwards."""
    work = settings.archive_dir / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield _Buildah(work, settings.storage_driver)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(command: Sequence[str], log: Path, out: TextIO, env: Mapping[str, str] | None = None) -> None:
    """Run ``command``, its output appended to ``log`` (debootstrap and pip print hundreds of lines, of
    use only on failure), with a heartbeat on ``out`` every 30 s; raise with the log's tail on failure."""
    started = time.monotonic()
    with open(log, "ab") as sink:
        sink.write(f"$ {shlex.join(command)}\n".encode())
        sink.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   env=env)
        while True:
            try:
                process.wait(timeout=_HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                print(f"    ... {time.monotonic() - started:.0f}s", file=out, flush=True)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_ERROR_TAIL_LINES:])
        raise ImageError(f"`{shlex.join(command)}` failed (exit {process.returncode}); "
                         f"the end of {log}:\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Build what is missing; print ``name ref path`` per image (progress goes to stderr)."""
    try:
        images = ensure_images(progress=sys.stderr, names=list(argv if argv is not None else sys.argv[1:]))
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for image in images.values():
        print(image.name, image.ref, image.archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
