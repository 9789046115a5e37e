"""``tokenware/core`` is sans-I/O (DESIGN.md §1, rule 1), and extras stay optional.

Each check runs in a fresh interpreter so modules imported by other tests
(or by pytest itself) cannot hide or fake an import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tokenware.core

CORE_DIR = Path(tokenware.core.__file__).parent
CORE_MODULES = sorted(
    f"tokenware.core.{p.stem}" for p in CORE_DIR.glob("*.py") if p.stem != "__init__"
)

# Never imported by the core. ``threading`` and ``json`` are not in the list:
# both are pure-Python helpers the stdlib itself pulls in, not I/O.
# ``socket``, ``ssl`` and ``select`` are: importing ``tokenware`` today pulls in
# none of them, and a core that did would be doing network I/O.
FORBIDDEN = (
    "redis",
    "starlette",
    "werkzeug",
    "flask",
    "sqlite3",
    "_sqlite3",
    "asyncio",
    "anyio",
    "httpx",
    "socket",
    "ssl",
    "select",
    "selectors",
)
# Import statements the core's source may not contain, even inside a function.
FORBIDDEN_IN_SOURCE = (*FORBIDDEN, "tokenware.stores", "tokenware._drive", "tokenware.facade")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_are_core_modules_to_check() -> None:
    assert "tokenware.core.session" in CORE_MODULES
    assert "tokenware.core.credentials" in CORE_MODULES


def test_importing_tokenware_and_every_core_module_loads_no_io_library() -> None:
    proc = run_python(
        f"""
        import importlib, json, sys
        import tokenware
        for name in {CORE_MODULES!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_the_check_can_fail() -> None:
    # The same probe sees a forbidden module once something imports it.
    proc = run_python(
        f"""
        import json, sys
        import tokenware, sqlite3
        print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "sqlite3" in json.loads(proc.stdout)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_source_has_no_io_imports(module: str) -> None:
    path = CORE_DIR / (module.rsplit(".", 1)[1] + ".py")
    tree = ast.parse(path.read_text("utf-8"))
    # Imports under ``if TYPE_CHECKING:`` are annotations only, never run.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    imported: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    bad = {
        name
        for name in imported
        for forbidden in FORBIDDEN_IN_SOURCE
        if name == forbidden or name.startswith(forbidden + ".")
    }
    assert bad == set(), f"{module} imports {sorted(bad)}"


BLOCKER = """
import importlib.abc, sys

BLOCKED = ("redis", "starlette", "werkzeug", "flask")

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Blocker())
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
"""


def test_tokenware_imports_and_works_without_the_optional_extras() -> None:
    proc = run_python(
        BLOCKER
        + """
import tokenware
from tokenware import Tokenware

try:
    import redis
except ImportError:
    pass
else:
    raise SystemExit("the blocker does not work")

tw = Tokenware(store="memory://", secret_key=b"k" * 32)
s = tw.sessions.add("alice")
assert tw.authenticate("Bearer " + s.key).subject == "alice"
assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
print("ok")
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_redis_url_without_the_extra_is_a_configuration_error_naming_it() -> None:
    proc = run_python(
        BLOCKER
        + """
from tokenware import Tokenware
from tokenware.errors import ConfigurationError

try:
    Tokenware(store="redis://127.0.0.1:6379/0", secret_key=b"k" * 32)
except ConfigurationError as exc:
    print(str(exc))
else:
    raise SystemExit("no ConfigurationError")
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert "tokenware[redis]" in proc.stdout
