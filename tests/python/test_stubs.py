"""The type stubs describe the module as it is: every public name and every public
member of the native classes is declared in the .pyi files, and nothing is declared
that the module lacks."""
import ast
import inspect
import pathlib

import medsearch
import medsearch._core as core

PKG = pathlib.Path(medsearch.__file__).parent


def stub(name):
    return ast.parse((PKG / name).read_text())


def test_init_stub_exports_every_public_name():
    tree = stub("__init__.pyi")
    declared = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert set(medsearch.__all__) <= declared, set(medsearch.__all__) - declared
    assert declared <= set(dir(medsearch)), declared - set(dir(medsearch))


def test_core_stub_declares_every_class_member():
    tree = stub("_core.pyi")
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    public = [n for n in dir(core) if not n.startswith("_")]
    for name in public:
        obj = getattr(core, name)
        if inspect.isclass(obj):
            assert name in classes, f"{name} is not declared in _core.pyi"
            body = classes[name].body
            members = {n.name for n in body if isinstance(n, ast.FunctionDef)}
            runtime = {m for m in vars(obj) if not m.startswith("_") or m in ("__len__", "__contains__")}
            if issubclass(obj, BaseException):
                continue
            missing = runtime - members
            assert not missing, f"{name}: not in the stub: {sorted(missing)}"
            stale = {m for m in members if not hasattr(obj, m)}
            assert not stale, f"{name}: in the stub but not in the module: {sorted(stale)}"
        else:
            assert name in functions, f"{name} is not declared in _core.pyi"
    stale = (set(classes) | functions) - set(public)
    assert not stale, f"declared in _core.pyi but not in the module: {sorted(stale)}"
