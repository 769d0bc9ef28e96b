"""The layers of ../shared/DESIGN.md, read off the import graph: edges call only the use-case layer, only
`workers/` knows Ray, the cores know nothing of the service; and the wheel installs only the layout's modules."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

EDGES = ["api.py", "fimg_service/http", "fimg_service/cli", "fimg_service/web"]
CORES = ["imaging", "biometrics", "agepro", "models"]
# The values use cases return are storage's frozen records; an edge may name their types.
EDGE_MAY_IMPORT = {"fimg_service.storage.records"}


def python_files(*roots: str) -> list[Path]:
    files = []
    for root in roots:
        path = REPO_ROOT / root
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offending(paths: list[Path], forbidden: tuple[str, ...], allowed: set[str] = frozenset()) -> list[str]:
    found = []
    for path in paths:
        for name in sorted(imported_modules(path)):
            if name in allowed or any(name.startswith(a + ".") for a in allowed):
                continue
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    return found


def test_edges_call_only_the_use_case_layer():
    assert offending(python_files(*EDGES), ("workers", "ray", "fimg_service.storage", "sqlalchemy"),
                     EDGE_MAY_IMPORT) == []


def test_the_use_case_layer_speaks_in_records_not_sessions():
    assert offending(python_files("fimg_service/usecases"), ("ray", "sqlalchemy", "fastapi", "starlette")) == []


def test_only_workers_know_ray():
    outside = [p for p in python_files("api.py", "fimg_service", *CORES) if "workers" not in p.parts]
    assert offending(outside, ("ray",)) == []


def test_cores_know_nothing_of_the_service():
    assert offending(python_files(*CORES), ("ray", "fastapi", "starlette", "sqlalchemy", "fimg_service", "workers",
                                            "api")) == []


def test_the_graph_is_what_this_test_reads():
    """The checks above would pass vacuously if the parser missed imports: it must see the known ones."""
    assert "fimg_service.usecases.Application" in imported_modules(REPO_ROOT / "api.py")
    assert "ray" in imported_modules(REPO_ROOT / "workers" / "pool.py")
    assert offending([REPO_ROOT / "workers" / "pool.py"], ("ray",)) == ["workers/pool.py imports ray"]


@pytest.mark.slow
def test_the_wheel_installs_only_the_layout_and_one_service_package(tmp_path):
    # Built from a copy of the project's files: setuptools reuses a source tree's build/ directory.
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    source = tmp_path / "source"
    for name in listed:
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = tmp_path.glob("fimg-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0].removesuffix(".py") for name in names if ".dist-info" not in name.split("/")[0]}
    assert top == {"imaging", "biometrics", "agepro", "workers", "models", "api", "fimg_service"}
    assert "fimg_service/storage/migrations/versions/0001_initial.py" in names
    assert any(name.startswith("models/") and name.endswith(".json") for name in names)
