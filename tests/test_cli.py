import subprocess
import sys

from embedkit.cli import COMMANDS


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True, text=True, **kw)


def test_help_lists_every_command_without_importing_numba_or_numpy():
    code = ("import sys\nfrom embedkit.cli import main\nsys.argv=['embedkit','--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('numba' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stderr.strip() == "False False", r.stderr
    for name in COMMANDS:
        assert f"  {name} " in r.stdout


def test_unknown_command_is_a_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2 and "No such command 'frobnicate'" in r.stderr and "Traceback" not in r.stderr


def test_every_registered_command_imports_and_has_help():
    import importlib

    for name, (module, attr, _) in COMMANDS.items():
        cmd = getattr(importlib.import_module(module), attr)
        assert cmd.name == name, (name, cmd.name)
