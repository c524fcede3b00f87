"""Every module of det imports (catches broken imports in rarely used corners)."""
import importlib
import pkgutil

import pytest

import det.cli
import det.core
import det.ops


def all_modules():
    names = []
    for pkg in (det.core, det.cli, det.ops):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", all_modules())
def test_module_imports(name):
    importlib.import_module(name)
