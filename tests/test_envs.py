"""The conda environments of envs/ pin what pyproject.toml pins, and every rule uses one."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*((?:[<>=!~]=?\s*[^,\s]+\s*,?\s*)*)$")


def parse(requirement: str) -> tuple[str, str]:
    """(normalised name, specifier without spaces) of a pip or conda requirement string."""
    match = REQUIREMENT.match(requirement.split(";")[0].split("#")[0])
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, re.sub(r"\s+", "", match.group(2))


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(parse(r) for r in project["dependencies"])


def env_requirements(path: Path) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())
    found = {}
    for entry in spec["dependencies"]:
        items = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in items:
            name, specifier = parse(item)
            found[name] = specifier
    return found


def test_there_are_environments():
    assert {p.stem for p in ENV_FILES} >= {"analysis", "segment", "aggregate"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_pyproject(path):
    pins = pyproject_pins()
    for name, specifier in env_requirements(path).items():
        if name in pins:
            assert specifier == pins[name], f"{path.name}: {name}{specifier} vs {pins[name]}"
        else:
            assert name in {"python", "pip"}, f"{path.name}: {name} is not a pyproject dependency"


def test_every_pyproject_dependency_is_in_some_env():
    everywhere = set().union(*(env_requirements(p) for p in ENV_FILES))
    missing = set(pyproject_pins()) - everywhere
    assert not missing, f"pyproject dependencies in no envs/*.yaml: {sorted(missing)}"


def test_every_rule_names_an_existing_env():
    rules_dir = REPO / "workflow" / "rules"
    for smk in sorted(rules_dir.glob("*.smk")):
        text = smk.read_text()
        n_rules = len(re.findall(r"^rule \w+:", text, flags=re.M))
        targets = len(re.findall(r"^rule (all|figures|train):", text, flags=re.M))
        envs = re.findall(r'conda:\s*\n\s*"([^"]+)"', text)
        assert len(envs) == n_rules - targets, f"{smk.name}: a rule without conda:"
        for env in envs:
            assert (rules_dir / env).resolve().is_file(), f"{smk.name}: {env} does not exist"
