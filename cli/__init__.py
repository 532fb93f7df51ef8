"""The ``embedkit`` command: a click group whose subcommands are imported only when run.

``embedkit --help`` and usage errors must stay fast and must not import numba or numpy, so the
group lists commands from the table below and imports a command's module only to run it.
"""
from __future__ import annotations

import importlib
import sys

import click

# name -> (module, attribute, one-line help shown by `embedkit --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("embedkit.cli.demo", "demo", "Learn BPE, train vectors and show neighbours on a built-in corpus."),
    "bpe": ("embedkit.cli.bpe", "bpe", "Learn, apply and undo BPE vocabularies (HF / subword-nmt files)."),
    "train": ("embedkit.cli.train", "train", "Train word vectors: CBOW or skip-gram, with char or BPE subwords."),
    "nn": ("embedkit.cli.query", "nn", "Nearest neighbours of words (cosine)."),
    "analogy": ("embedkit.cli.query", "analogy", "Solve 'A is to B as C is to ?' (3CosAdd)."),
    "vectors": ("embedkit.cli.query", "vectors", "Print the vectors of words, out-of-vocabulary ones too."),
    "eval": ("embedkit.cli.query", "eval_", "Evaluate vectors on similarity and analogy sets."),
    "convert": ("embedkit.cli.query", "convert", "Convert vectors between .vec, word2vec .bin and native."),
    "encoder": ("embedkit.cli.encoder", "encoder", "Train and query a small transformer encoder."),
    "classify": ("embedkit.cli.classify", "classify", "Train, test and apply fastText-style text classifiers."),
    "probe": ("embedkit.cli.probe", "probe", "Linear-probe accuracy of frozen features (vectors or an encoder)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embedkit")
def cli():
    """Word embeddings and tokenization from the shell.

    Bad input gives a one-line error and exit code 2; results go to stdout, progress to stderr.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every error is one line on stderr and exit code 2, Ctrl-C is 130.

    The command is run through ``make_context``/``invoke`` rather than ``cli.main`` because click's
    own handlers would print usage errors on four lines and turn a closed pipe into exit code 1.
    Ctrl-C goes through ``embedkit.interrupts``, so that it is not lost where Python swallows it.
    """
    from embedkit import interrupts

    restore = interrupts.install()
    try:
        _main(argv)
    finally:
        restore()


def _interrupted(argv: list[str] | None) -> None:
    """Exit 130. A real process leaves through ``os._exit``: a Ctrl-C that an extension swallowed
    may have set the interpreter's "unhandled KeyboardInterrupt" flag, and then a normal exit
    ends the process by SIGINT (status -2) whatever ``sys.exit`` said. Every file is cleaned up
    by now (temps and scratch folders go as the exception unwinds)."""
    click.echo("\nembedkit: interrupted", err=True)
    if argv is None:
        import os

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # a closed pipe: nothing more to tell it
                pass
        os._exit(130)
    sys.exit(130)


def _main(argv: list[str] | None) -> None:
    from embedkit import interrupts
    from embedkit.errors import EmbedkitError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with cli.make_context("embedkit", args) as ctx:
            rv = cli.invoke(ctx)
    except click.exceptions.Exit as e:  # --help, --version
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _interrupted(argv)
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()
        sys.exit(e.exit_code)
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        click.echo(f"embedkit: error: {e.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except EmbedkitError as e:
        click.echo(f"embedkit: error: {e}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        # The reader went away (`embedkit nn ... | head`): not an error of ours. stdout still
        # holds unwritable data that the exit-time flush would trip over, so point it at devnull.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except MemoryError:
        click.echo("embedkit: error: out of memory", err=True)
        sys.exit(2)
    except OSError as e:
        if interrupts.pending():
            _interrupted(argv)
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"embedkit: error: {where}{e.strerror or e}", err=True)
        sys.exit(2)
    except Exception:
        if interrupts.pending():  # a swallowed Ctrl-C resurfacing as another error
            _interrupted(argv)
        raise
    code = rv if isinstance(rv, int) else 0
    if argv is None and "numba" in sys.modules:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Skip the interpreter's teardown, which takes ~0.2 s once Numba/LLVM are loaded: every
    output file is complete and renamed into place by now, only the standard streams need flushing."""
    import os

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = 0
    sys.stderr.flush()
    os._exit(code)
