"""The README's two first commands stay true: CI runs the test command exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_code_blocks(n: int = 2) -> list[str]:
    text = (REPO / "README.md").read_text()
    head = "\n".join(text.splitlines()[:30])
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", head, flags=re.S)][:n]


def test_readme_starts_with_the_two_commands():
    example, tests = _first_code_blocks()
    assert "snakemake" in example and "pip install" in example
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = _first_code_blocks()
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci


def test_default_config_runs_on_bundled_example():
    sheet = (REPO / "config" / "samples.tsv").read_text()
    assert "resources/example" in sheet
