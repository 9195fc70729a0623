"""The shape of the code (README "Code map"), checked on the source: which modules may import
gradio and the database, where the environment is read, and the size limits of modules and
functions. Plain AST walks over colorizer/, turing_test/ and app.py; nothing is imported."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("colorizer", "turing_test")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def tree(p: Path) -> ast.Module:
    return ast.parse(p.read_text(encoding="utf-8"), filename=str(p))


def imported_modules(p: Path) -> set[str]:
    """Every module an import statement in this file names, at any depth (lazy imports too);
    relative imports resolved against the file's package."""
    pkg = rel(p)[:-3].split("/")[:-1]
    found = set()
    for n in ast.walk(tree(p)):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg[:len(pkg) - (n.level - 1)] if n.level > 1 else pkg
                mod = ".".join(base + ([n.module] if n.module else []))
                found.add(mod)
                found |= {f"{mod}.{a.name}" for a in n.names}  # `from . import store`
            else:
                found.add(n.module)
                found |= {f"{n.module}.{a.name}" for a in n.names}
    return found


def is_ui_module(path: str) -> bool:
    """The ui modules: colorizer/ui.py and turing_test/ui.py, and what lies in a webapp/ folder."""
    return path.endswith("/ui.py") or "/webapp/" in path


def names(mods: set[str], *roots: str) -> set[str]:
    return {m for m in mods if any(m == r or m.startswith(r + ".") for r in roots)}


def test_the_checks_see_the_whole_code():
    files = {rel(p) for p in sources()}
    assert {"colorizer/lab.py", "colorizer/ui.py", "turing_test/ui.py", "turing_test/survey.py"} <= files
    assert any("/webapp/" in f for f in files)
    # the import walk finds lazy and relative imports (a check that sees nothing cannot fail)
    assert "gradio" in imported_modules(ROOT / "colorizer" / "webapp" / "layout.py")
    assert names(imported_modules(ROOT / "turing_test" / "webapp" / "service.py"), "turing_test.store")


def test_gradio_is_imported_only_by_the_ui_modules():
    bad = [rel(p) for p in sources() if not is_ui_module(rel(p)) and names(imported_modules(p), "gradio")]
    assert bad == []


GRADIO_FREE_UI = ("turing_test/webapp/report.py", "turing_test/webapp/state.py", "colorizer/webapp/hint_geometry.py",
                  "colorizer/webapp/state.py", "colorizer/webapp/files.py", "colorizer/webapp/models.py")


@pytest.mark.parametrize("path", ["turing_test/survey.py", "turing_test/stats", *GRADIO_FREE_UI])
def test_pure_logic_stays_free_of_gradio_and_of_the_database(path):
    target = ROOT / path
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert all(f.is_file() for f in files) and files, f"{path} is not in this tree: update the map"
    for p in files:
        mods = imported_modules(p)
        assert names(mods, "gradio", "sqlalchemy", "psycopg", "turing_test.db", "turing_test.store",
                     "turing_test.models", "turing_test.ui", "turing_test.webapp.participant",
                     "turing_test.webapp.admin") == set(), rel(p)


def test_statistics_use_pandas_not_the_survey_server():
    for p in sorted((ROOT / "turing_test" / "stats").rglob("*.py")):
        mods = imported_modules(p)
        assert names(mods, "turing_test.pool", "colorizer", "torch") == set(), rel(p)


ENV_NAME = re.compile(r"^(COLORIZER|TURING)_[A-Z0-9_]+$")
SETTINGS = ("colorizer/settings.py", "turing_test/settings.py")
# os.environ outside the settings modules: only the variables of Gradio, Hugging Face and torchrun
FOREIGN_ENV = re.compile(r"^(GRADIO_|HF_|WORLD_SIZE$|LOCAL_RANK$)")


def test_our_environment_variables_are_read_only_by_the_settings_objects():
    named, lines = [], {}
    for p in [*sources(), ROOT / "app.py"]:
        path = rel(p)
        if path in SETTINGS:
            continue
        text = p.read_text(encoding="utf-8").splitlines()
        for n in ast.walk(tree(p)):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and ENV_NAME.match(n.value):
                named.append(f"{path}:{n.lineno} {n.value}")
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "os" \
                    and n.attr in ("environ", "getenv", "putenv"):
                lines[f"{path}:{n.lineno}"] = re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"']", text[n.lineno - 1])
    assert named == []
    # what is left names only Gradio's, Hugging Face's or torchrun's own variables ...
    assert {k: v for k, v in lines.items() if not all(FOREIGN_ENV.match(q) for q in v)} == {}
    # ... and a bare os.environ (no variable named on its line) is torchrun_world's alone
    assert [k for k, v in lines.items() if not v and not k.startswith("colorizer/train_config.py")] == []


def test_no_module_over_500_lines_and_no_function_over_80():
    long_modules, long_functions = [], []
    for p in sources():
        text = p.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{rel(p)} ({text.count(chr(10))} lines)")
        for n in ast.walk(tree(p)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = n.end_lineno - n.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel(p)}:{n.lineno} {n.name} ({length} lines)")
    assert long_modules == []
    assert long_functions == []


def test_every_module_says_what_it_is_for():
    missing = [rel(p) for p in sources()
               if p.stat().st_size and not ast.get_docstring(tree(p))]
    assert missing == []


def test_the_readme_code_map_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Code map")
    end = readme.find("\n## ", start + 1)
    section = readme[start:end if end > 0 else None]
    missing = []
    for p in sources():
        path = rel(p)
        if p.name in ("__init__.py", "__main__.py") and path.count("/") > 1:
            continue  # a subpackage's own __init__: its folder's line covers it
        parts = path.split("/")
        if len(parts) == 2:  # a package's own module: named by its path
            ok = path in section or (p.name == "__init__.py" and f"{parts[0]}/" in section)
        else:  # in a folder (models/, webapp/): the folder's line, and the module by its name
            ok = f"{parts[0]}/{parts[1]}/" in section and re.search(rf"\b{p.stem}\b", section) is not None
        if not ok:
            missing.append(path)
    assert missing == []
