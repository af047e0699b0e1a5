"""The archives users install hold exactly the source tree's packages, entry points and metadata.

Every other test runs on an editable install, which cannot notice a module missing from a
wheel: storage-core once shipped without storage_local while the suite was green. These
tests build the real sdists and wheels with the project's own build backend and read them.
"""

from __future__ import annotations

import configparser
import email
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Project:
    """One distribution of this repository and where its importable packages live."""

    folder: Path
    packages: dict[str, Path]  # top-level package in the wheel -> its folder in the source tree

    @property
    def pyproject(self) -> dict[str, object]:
        return tomllib.loads((self.folder / "pyproject.toml").read_text(encoding="utf-8"))

    @property
    def name(self) -> str:
        project = self.pyproject["project"]
        assert isinstance(project, dict)
        return str(project["name"])


def _projects() -> list[Project]:
    found = [
        Project(ROOT, {"storage_core": ROOT / "storage_core", "storage_local": ROOT / "storage_local"}),
        Project(ROOT / "storage_redis", {"storage_redis": ROOT / "storage_redis" / "src" / "storage_redis"}),
    ]
    example = ROOT / "examples" / "storage-memory"
    if (example / "pyproject.toml").exists():
        module = next(p for p in (example / "src" / "storage_memory", example / "storage_memory") if p.exists())
        found.append(Project(example, {"storage_memory": module}))
    return found


PROJECTS = _projects()


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path  # built straight from the source tree
    wheel_from_sdist: Path


def _build(args: list[str], outdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), *args],
        check=True,
        capture_output=True,
    )
    (archive,) = outdir.iterdir()
    return archive


def _build_all(project: Project, out: Path) -> Built:
    sdist = _build(["--sdist", str(project.folder)], out / "sdist")
    wheel = _build(["--wheel", str(project.folder)], out / "wheel")
    unpacked = out / "unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    wheel_from_sdist = _build(["--wheel", str(source)], out / "wheel-from-sdist")
    return Built(sdist, wheel, wheel_from_sdist)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Project], Built]:
    """Build each project's archives once for the whole module."""
    cache: dict[str, Built] = {}

    def get(project: Project) -> Built:
        if project.name not in cache:
            cache[project.name] = _build_all(project, tmp_path_factory.mktemp(project.name))
        return cache[project.name]

    return get


@pytest.fixture(params=PROJECTS, ids=lambda p: p.name)
def built(request: pytest.FixtureRequest, build: Callable[[Project], Built]) -> tuple[Project, Built]:
    project: Project = request.param
    return project, build(project)


def _source_files(project: Project) -> set[str]:
    """Every file a wheel should carry for *project*, as paths inside the wheel."""
    files = set()
    for package, folder in project.packages.items():
        for path in folder.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.add(f"{package}/{path.relative_to(folder).as_posix()}")
    return files


def _wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


def test_the_wheel_holds_exactly_the_source_packages(built: tuple[Project, Built]) -> None:
    project, archives = built
    expected = _source_files(project)
    actual = _wheel_files(archives.wheel)
    missing, stray = sorted(expected - actual), sorted(actual - expected)
    assert not missing, f"missing from the {project.name} wheel: {missing}"
    assert not stray, f"stray files in the {project.name} wheel: {stray}"
    for package in project.packages:
        assert f"{package}/py.typed" in actual
        assert f"{package}/__init__.py" in actual


def test_the_sdist_holds_the_source_packages_and_no_other_distribution(built: tuple[Project, Built]) -> None:
    project, archives = built
    with tarfile.open(archives.sdist) as archive:
        names = {n.partition("/")[2] for n in archive.getnames()}
    assert {"pyproject.toml", "PKG-INFO", "README.md"} <= names
    relative = {
        f"{folder.relative_to(project.folder).as_posix()}/{path.partition('/')[2]}"
        for package, folder in project.packages.items()
        for path in _source_files(Project(project.folder, {package: folder}))
    }
    missing = sorted(relative - names)
    assert not missing, f"missing from the {project.name} sdist: {missing}"
    others = [p for p in PROJECTS if p.folder != project.folder and p.folder.is_relative_to(project.folder)]
    for other in others:
        inside = other.folder.relative_to(project.folder).as_posix()
        leaked = [n for n in names if n.startswith(f"{inside}/")]
        assert not leaked, f"{other.name} leaked into the {project.name} sdist: {leaked}"
    assert not [n for n in names if n.startswith(("tests/", ".venv/", "bench/"))]


def test_a_wheel_built_from_the_sdist_is_the_same(built: tuple[Project, Built]) -> None:
    _, archives = built
    assert _wheel_files(archives.wheel_from_sdist) == _wheel_files(archives.wheel)
    for name in ("entry_points.txt", "METADATA"):
        assert _dist_info(archives.wheel_from_sdist, name) == _dist_info(archives.wheel, name)


def test_the_wheel_declares_the_entry_points_of_its_pyproject(built: tuple[Project, Built]) -> None:
    project, archives = built
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # entry-point names are case-sensitive
    parser.read_string(_dist_info(archives.wheel, "entry_points.txt"))
    actual = {section: dict(parser[section]) for section in parser.sections()}
    meta = project.pyproject["project"]
    assert isinstance(meta, dict)
    expected = {group: dict(points) for group, points in meta.get("entry-points", {}).items()}
    if "scripts" in meta:
        expected["console_scripts"] = dict(meta["scripts"])
    assert actual == expected
    assert "storage_core" in actual, "every distribution here provides a storage_core plugin"


def test_storage_core_ships_its_command_local_backend_and_redis_extra(build: Callable[[Project], Built]) -> None:
    archives = build(PROJECTS[0])
    entry_points = _dist_info(archives.wheel, "entry_points.txt")
    assert "storage = storage_core.cli:main" in entry_points
    assert "local = storage_local.plugin" in entry_points
    metadata = email.message_from_string(_dist_info(archives.wheel, "METADATA"))
    assert "storage-redis>=0.1; extra == 'redis'" in metadata.get_all("Requires-Dist", [])
    assert {"redis", "testing"} <= set(metadata.get_all("Provides-Extra", []))


def test_twine_check_strict_passes_on_every_archive(built: tuple[Project, Built]) -> None:
    _, archives = built
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(archives.sdist), str(archives.wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_redis_readme_has_no_relative_link() -> None:
    readme = (ROOT / "storage_redis" / "README.md").read_text(encoding="utf-8")
    targets = [part.partition(")")[0] for part in readme.split("](")[1:]]
    assert targets, "the README links to storage-core"
    assert all(t.startswith("https://") for t in targets), targets


def test_the_installed_run_refuses_to_test_the_source_tree() -> None:
    """The guard .ci/test-installed relies on: here our packages come from the checkout."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/core/test_suggest.py"],
        cwd=ROOT,
        env={**os.environ, "STORAGE_TEST_INSTALLED": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "storage_core is imported from" in result.stderr
    assert "not from" in result.stderr
