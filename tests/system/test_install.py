"""The base install (no extras) runs the default configuration: build the seeds, answer a question."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_pip_install_without_extras_builds_the_seeds_and_answers(tmp_path):
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    venv = tmp_path / "venv"
    assert _run([base, "-m", "venv", str(venv)], tmp_path).returncode == 0
    py = str(venv / "bin" / "python")
    src = tmp_path / "src"  # what a release holds: the packages and their metadata, not .venv or indexes
    for name in ("rag", "ui"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # the CPU build of torch first, as scripts/setup.sh does (a bare requirement would pull CUDA)
    for args in (["torch==2.13.0"], [str(src)]):
        res = _run([py, "-m", "pip", "install", "--quiet", "--no-compile", *args], tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
    assert _run([py, "-c", "import gradio"], tmp_path).returncode != 0  # really the base install
    rag = str(venv / "bin" / "rag")
    index = tmp_path / "index"
    res = _run([rag, "index", "build", str(SEEDS), "--index", str(index), "-q"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    res = _run([rag, "ask", "Quelle est la capitale d'Oman ?", "--index", str(index)], tmp_path)
    assert res.returncode == 0 and "Mascate" in res.stdout, res.stdout + res.stderr[-2000:]
    res = _run([rag, "serve", "--index", str(index)], tmp_path, timeout=120)
    assert res.returncode == 1 and "pip install 'rag[ui]'" in res.stderr  # the chat says what it needs
