"""Lazily imported modules: nothing is imported before first use, threads using one at once all get it whole,
and a library loads without the optional packages it would only probe for."""

import importlib
import subprocess
import sys
import threading
import uuid

import pytest
from conftest import ROOT

from rag.lazy import imports_refused, lazy_import

SLOW_MODULE = """
import time
with open({log!r}, "a") as f:
    f.write("run\\n")
time.sleep(0.3)  # a heavy import: other threads read the module meanwhile
def load():
    return "loaded"
"""


@pytest.fixture
def slow_module(tmp_path):
    """A module on sys.path whose import takes 0.3 s and writes a line to a file each time it runs."""
    name = f"slow_{uuid.uuid4().hex}"
    log = tmp_path / "runs.log"
    (tmp_path / f"{name}.py").write_text(SLOW_MODULE.format(log=str(log)), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, log
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_a_lazy_module_is_imported_at_its_first_use_only(slow_module):
    name, log = slow_module
    module = lazy_import(name)
    assert not log.exists()
    assert module.load() == "loaded"
    assert log.read_text().splitlines() == ["run"]


def test_threads_reading_a_lazy_module_at_once_all_get_it_whole_and_it_runs_once(slow_module):
    name, log = slow_module
    module = lazy_import(name)
    start = threading.Barrier(4)
    got, errors = [], []

    def use():
        start.wait()
        try:
            got.append(module.load())
        except Exception as exc:  # noqa: BLE001 - what a half-imported module raises is the failure
            errors.append(repr(exc))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and got == ["loaded"] * 4
    assert log.read_text().splitlines() == ["run"]


def test_a_missing_module_is_reported_at_once_by_name():
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        lazy_import("no_such_module_here")


def test_imports_refused_fail_in_the_refusing_thread_only_and_only_inside_the_block(slow_module):
    name, log = slow_module
    elsewhere = []
    with imports_refused(name):
        with pytest.raises(ModuleNotFoundError, match=name):
            importlib.import_module(name)
        other = threading.Thread(target=lambda: elsewhere.append(importlib.import_module(name).load()))
        other.start()
        other.join()
    assert elsewhere == ["loaded"]  # another thread imported it as usual
    assert importlib.import_module(name).load() == "loaded"


def test_the_parse_pipeline_loads_without_pytorch():
    pytest.importorskip("spacy", reason="spaCy is not installed (pip install 'rag[syntax]')")
    code = ("import sys\nfrom rag.answering import syntax\n"
            "print(syntax.available('fr'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    if out.split()[0] != "True":
        pytest.skip("spaCy's French pipeline is not installed (pip install 'rag[syntax]')")
    assert out.split() == ["True", "False"]  # thinc probes for PyTorch: 1.4 s its CPU pipelines never use
