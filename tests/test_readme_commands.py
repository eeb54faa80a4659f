"""The README's Quick start cannot drift from what CI runs."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_test_command_the_readme_names():
    """README's Quick start has two commands, the demo and the tests; `.ci/run`
    runs exactly the second."""
    readme = (REPO_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL)]
    assert [command.split("#")[0].strip() for command in commands] == ["bash scripts/demo.sh", "bash scripts/test.sh"]

    result = subprocess.run(
        ["bash", ".ci/run"],
        cwd=REPO_ROOT,
        env={**os.environ, "CI_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines() == [f"ci: {commands[1]}"], result.stdout
