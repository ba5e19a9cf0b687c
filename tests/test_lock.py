"""The lock file that `make` installs matches what pyproject.toml asks for."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BASE_DIR = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked_versions() -> dict[str, str]:
    text = (BASE_DIR / "requirements" / "lock.txt").read_text()
    return {
        canonicalize_name(match[1]): match[2]
        for line in text.splitlines()
        if (match := PIN.match(line))
    }


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]
    return [
        Requirement(line)
        for line in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]


def test_every_declared_dependency_is_locked_at_a_version_it_allows():
    locked = locked_versions()
    stale = [
        f"{requirement} (locked: {locked.get(canonicalize_name(requirement.name), 'missing')})"
        for requirement in declared_requirements()
        if canonicalize_name(requirement.name) not in locked
        or not requirement.specifier.contains(
            locked[canonicalize_name(requirement.name)], prereleases=True
        )
    ]
    assert not stale, "requirements/lock.txt is out of date; run `make lock`: " + ", ".join(stale)


def test_every_locked_package_has_a_hash():
    text = (BASE_DIR / "requirements" / "lock.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) == len(locked_versions())
    assert all("--hash=sha256:" in entry for entry in entries)
