"""The package layout: no two modules import each other, and no subpackage hides an API name.

Two modules that import each other (at any level: module top, inside a function, under
``TYPE_CHECKING``) share a piece that wants its own home below both; the layout keeps none.
"""

import ast
import importlib
import pkgutil
from pathlib import Path

import nascsim

PACKAGE = Path(nascsim.__file__).resolve().parent


def module_names() -> dict[str, Path]:
    """``{"nascsim.core.engine": path, "nascsim.core": path of its __init__.py, ...}``."""
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = ("nascsim", *f.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(known(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = ".".join(base[: len(base) - node.level + 1] + [node.module or ""]).strip(".") if node.level \
                else node.module
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` the module
            found.update(known(f"{source}.{a.name}") if f"{source}.{a.name}" in modules else known(source)
                         for a in node.names)
    return found - {None, name}


def test_the_import_scanner_sees_function_level_and_package_relative_imports(tmp_path):
    modules = {"nascsim.a": tmp_path / "a.py", "nascsim.b": tmp_path / "b.py", "nascsim.pkg": tmp_path / "pkg.py",
               "nascsim.pkg.c": tmp_path / "c.py"}
    src = "def f():\n    from nascsim.b import x\n\nfrom nascsim.pkg import c\nimport nascsim.pkg.c.y\n"
    modules["nascsim.a"].write_text(src)
    assert imports_of("nascsim.a", modules["nascsim.a"], modules) == {"nascsim.b", "nascsim.pkg.c"}


def test_no_two_modules_of_the_package_import_each_other():
    modules = module_names()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    circles = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})
    assert circles == []


def test_the_hardware_model_does_not_read_the_search_core():
    modules = module_names()
    hw = [name for name in modules if name.startswith("nascsim.hw")]
    assert len(hw) >= 5
    for name in hw:
        assert not {m for m in imports_of(name, modules[name], modules) if m.startswith("nascsim.core")}, name


def test_the_api_names_survive_importing_every_subpackage():
    """A subpackage named like an API function (``nascsim.search``) would replace the function as
    the package's attribute once imported; ``nascsim.sweep`` is the one subpackage that is also
    the API function (callable), by design."""
    for info in pkgutil.walk_packages(nascsim.__path__, "nascsim."):
        if info.ispkg:
            importlib.import_module(info.name)
    for name, (module, attr) in nascsim._LAZY.items():
        expected = importlib.import_module(module) if attr is None else getattr(importlib.import_module(module), attr)
        assert getattr(nascsim, name) is expected, name
    assert nascsim.search.__module__ == "nascsim.api" and callable(nascsim.sweep)
