"""Lazily imported modules: nothing is imported before first use, and threads using one at once all get it whole."""

import sys
import threading
import uuid

import pytest

from rag.lazy import lazy_import

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
