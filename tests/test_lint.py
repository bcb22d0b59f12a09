"""The code base stays ruff-clean (lint and format), enforced in CI."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .helpers import REPO


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_clean(args):
    ruff = shutil.which("ruff") or pytest.fail("ruff is a test dependency: pip install -e '.[test]'")
    proc = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
