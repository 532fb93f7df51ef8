import subprocess
import sys

from embedkit.cli import COMMANDS


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True, text=True, **kw)


def test_help_lists_every_command_without_importing_numba_or_numpy():
    code = ("import sys\nfrom embedkit.cli import main\nsys.argv=['embedkit','--help']\n"
            "try:\n    main()\n    c = None\nexcept SystemExit as e:\n    c = e.code\n"
            "print(c, 'numba' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stderr.strip() == "0 False False", r.stderr
    assert r.stdout.startswith("Usage: embedkit ")
    for name in COMMANDS:
        assert f"  {name} " in r.stdout


def test_unknown_command_is_a_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2 and "No such command 'frobnicate'" in r.stderr and "Traceback" not in r.stderr


def test_every_registered_command_imports_and_has_help():
    """Each command (and each subcommand of a group) answers --help: exit 0, its usage line and
    its options."""
    import importlib

    import click
    from click.testing import CliRunner

    runner = CliRunner()
    for name, (module, attr, _) in COMMANDS.items():
        cmd = getattr(importlib.import_module(module), attr)
        assert cmd.name == name, (name, cmd.name)
        paths = [[]] + ([[sub] for sub in cmd.commands] if isinstance(cmd, click.Group) else [])
        for path in paths:
            r = runner.invoke(cmd, [*path, "--help"], prog_name=f"embedkit {name}")
            assert r.exit_code == 0, (name, path, r.output)
            assert r.output.startswith(" ".join(["Usage: embedkit", name, *path])), r.output
            assert "--help" in r.output and "Show this message and exit." in r.output
