"""The pure parts of `readiness.envtest.images`: what an image's hash covers, and the apt mirror lookup."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from readiness.envtest import images
from readiness.envtest.images import ImageError, ImageSettings


def fake_repo(root: Path) -> Path:
    """A checkout with the operator's build context, a by-product or two, and the image recipes."""
    root.mkdir()
    for name in ("Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml", "README.md"):
        (root / name).write_text(f"{name}\n")
    package = root / "operator" / "readiness"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text("RULES = 1\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "engine.cpython-311.pyc").write_bytes(b"\0compiled")
    (root / "operator" / "readiness_operator.egg-info").mkdir()
    (root / "operator" / "readiness_operator.egg-info" / "PKG-INFO").write_text("Name: x\n")
    hack = root / "hack" / "images"
    for image in ("python-base", "pause", "workload"):
        (hack / image).mkdir(parents=True)
        (hack / image / "Containerfile").write_text(f"FROM scratch # {image}\n")
    (hack / "pause" / "pause.c").write_text("int main(void) { return 0; }\n")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return fake_repo(tmp_path / "repo")


@pytest.fixture
def settings(tmp_path: Path) -> ImageSettings:
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "busybox").write_bytes(b"\x7fELF busybox")
    return ImageSettings(cache_dir=tmp_path / "cache", ca_bundle=tmp_path / "ca.crt",
                         busybox=tmp_path / "busybox")


def test_operator_context_is_what_dockerignore_lets_in(repo: Path) -> None:
    assert sorted(images.operator_context(repo)) == [
        ".dockerignore", "Dockerfile", "README.md", "operator/readiness/__init__.py",
        "operator/readiness/engine.py", "pyproject.toml", "requirements.lock",
    ]


def test_hash_changes_with_content_and_not_otherwise(repo: Path, settings: ImageSettings) -> None:
    before = images.image_keys(settings, repo)
    assert images.image_keys(settings, repo) == before
    engine = repo / "operator" / "readiness" / "engine.py"
    engine.write_text(engine.read_text())  # rewritten, same bytes: a new mtime only
    assert images.image_keys(settings, repo) == before
    engine.write_text("RULES = 2\n")
    after = images.image_keys(settings, repo)
    assert after["operator"] != before["operator"]
    assert {k: v for k, v in after.items() if k != "operator"} == \
        {k: v for k, v in before.items() if k != "operator"}


def test_hash_ignores_build_by_products(repo: Path, settings: ImageSettings) -> None:
    before = images.image_keys(settings, repo)["operator"]
    (repo / "operator" / "readiness" / "__pycache__" / "engine.cpython-311.pyc").write_bytes(b"\0other")
    (repo / "operator" / "readiness" / "__pycache__" / "new.cpython-311.pyc").write_bytes(b"\0new")
    (repo / "operator" / "readiness_operator.egg-info" / "PKG-INFO").write_text("Name: y\n")
    (repo / "unrelated.txt").write_text("not in the build context\n")
    assert images.image_keys(settings, repo)["operator"] == before


@pytest.mark.parametrize("change", ["new file", "executable bit", "Dockerfile", "lock"])
def test_hash_covers_every_input_of_the_operator(repo: Path, settings: ImageSettings, change: str) -> None:
    before = images.image_keys(settings, repo)["operator"]
    if change == "new file":
        (repo / "operator" / "readiness" / "policy.yaml").write_text("kind: X\n")
    elif change == "executable bit":
        (repo / "operator" / "readiness" / "engine.py").chmod(0o755)
    elif change == "Dockerfile":
        (repo / "Dockerfile").write_text("FROM other\n")
    else:
        (repo / "requirements.lock").write_text("kopf==0\n")
    assert images.image_keys(settings, repo)["operator"] != before


def test_a_new_base_rebuilds_the_operator_too(repo: Path, settings: ImageSettings) -> None:
    before = images.image_keys(settings, repo)
    settings.ca_bundle.write_text("-----BEGIN CERTIFICATE-----\nanother CA\n")
    after = images.image_keys(settings, repo)
    assert after["python-base"] != before["python-base"]
    assert after["operator"] != before["operator"]
    assert after["pause"] == before["pause"] and after["workload"] == before["workload"]


def test_hash_is_unambiguous() -> None:
    assert images.input_hash({}, {"a": "bc"}) != images.input_hash({}, {"ab": "c"})
    assert images.input_hash({}, {"a": "1", "b": "2"}) == images.input_hash({}, {"b": "2", "a": "1"})


def test_planned_images_name_archives_and_tags_by_hash(repo: Path, settings: ImageSettings) -> None:
    planned = images.planned_images(settings, repo)
    assert list(planned) == list(images.IMAGE_NAMES)
    operator = planned["operator"]
    assert operator.repository == images.OPERATOR_REPOSITORY
    assert operator.tag.startswith("dev-") and len(operator.tag) == len("dev-") + 12
    assert planned["pause"].ref == images.PAUSE_REF
    assert planned["workload"].ref == images.WORKLOAD_REF
    assert planned["python-base"].ref == images.PYTHON_BASE_REF
    assert all(image.archive.parent == settings.cache_dir for image in planned.values())
    (repo / "operator" / "readiness" / "engine.py").write_text("RULES = 3\n")
    changed = images.planned_images(settings, repo)["operator"]
    assert changed.tag != operator.tag and changed.archive != operator.archive


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ImageSettings().archive_dir == tmp_path / "readiness-operator" / "images"


def test_a_warm_cache_builds_nothing(monkeypatch: pytest.MonkeyPatch, settings: ImageSettings) -> None:
    def no_build(*_: object) -> None:
        raise AssertionError("a warm cache must not build")

    monkeypatch.setattr(images, "_build_all", no_build)
    planned = images.planned_images(settings)
    settings.archive_dir.mkdir(parents=True)
    for image in planned.values():
        image.archive.write_bytes(b"archive")
    assert images.ensure_images(settings=settings) == planned
    assert images.ensure_images(settings=settings, names=["pause"]) == {"pause": planned["pause"]}
    with pytest.raises(ImageError, match="unknown image"):
        images.ensure_images(settings=settings, names=["nginx"])


def test_a_missing_operator_needs_its_base(settings: ImageSettings) -> None:
    planned = images.planned_images(settings)
    settings.archive_dir.mkdir(parents=True)
    planned["pause"].archive.write_bytes(b"archive")
    assert images._missing(planned, ["operator", "pause"]) == ["python-base", "operator"]
    assert images._missing(planned, ["pause", "workload"]) == ["workload"]


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_apt_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert images.apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    assert images.apt_mirror("bookworm-security", tmp_path) == "http://mirror.example/debian-security"


def test_apt_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://other.example/apt cloud-sdk-bookworm main\n"
        "deb [ signed-by=/k.gpg ] http://mirror.example/debian bookworm main contrib\n"
    )
    assert images.apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_apt_mirror_missing(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.example/debian bookworm contrib\n")
    with pytest.raises(ImageError, match="debian_mirror"):
        images.apt_mirror("bookworm", tmp_path)


def elf(*segment_types: int) -> bytes:
    """A 64-bit little-endian ELF header and program headers of the given types, nothing else."""
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, len(segment_types))
    return bytes(header) + b"".join(struct.pack("<I", kind) + bytes(52) for kind in segment_types)


def test_only_a_static_busybox_is_accepted(tmp_path: Path) -> None:
    static, dynamic, script = tmp_path / "static", tmp_path / "dynamic", tmp_path / "script"
    static.write_bytes(elf(1, 1, 4))  # PT_LOAD, PT_LOAD, PT_NOTE
    dynamic.write_bytes(elf(6, 3, 1))  # PT_PHDR, PT_INTERP, PT_LOAD
    script.write_bytes(b"#!/bin/sh\n")
    images._require_static(static)
    with pytest.raises(ImageError, match="dynamically linked"):
        images._require_static(dynamic)
    with pytest.raises(ImageError, match="not a 64-bit ELF"):
        images._require_static(script)
