"""Mutation testing of the modules that hold decisions: does the suite notice when the code is wrong?

Each mutant is one small edit of one module's syntax tree (a comparison flipped, ``and`` for
``or``, ``+`` for ``-``, a constant 0/1 swapped, a return value dropped, a call statement
removed, ...). For every mutant the project is copied to a temporary folder (one copy per job,
restored between mutants), the edit applied there, and the module's mapped test files run with
``pytest -x -q`` under a timeout. A failing run (or a timeout) kills the mutant; a passing run
means no test noticed: a survivor, printed with file:line so it can be killed by a new assertion
or explained as equivalent. The unmutated tests must pass in the copy first (else the run stops:
every mutant would count as killed), and the copy's tests must import the copy's code (checked).

    python benchmarks/mutation.py                              # every module (slow: hours)
    python benchmarks/mutation.py --module vectors/evaluate --max-mutants 20 --jobs 2
    python benchmarks/mutation.py --module corpus --list       # the mutants, without running
    python benchmarks/mutation.py --module io --only 58 --tests test_store.py  # kills #58 now?

Not a CI gate: run it by hand after changing a module or its tests. It uses its own small
mutator (``ast``), so it needs nothing beyond the test extras.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module (relative to embedkit/, without .py) -> the test files (or node ids) that should catch
# its mutants
MODULES: dict[str, list[str]] = {
    "bpe/files": ["test_bpe_model.py", "test_bpe_cli.py",
                  "test_promises.py::test_lowercase_recorded_in_tokdir_is_applied_on_encode_after_load"],
    "bpe/model": ["test_bpe_model.py", "test_bpe_cli.py",
                  "test_bpe_formats.py"],  # sentencepiece and ignore_merges vocabularies
    "wordvec/trainer": ["test_train.py", "test_train_bpe.py", "test_bpe_bag.py"],
    "vectors/evaluate": ["test_vectors.py", "test_query.py",
                         "test_promises.py::test_eval_case_sensitive_turns_upper_casing_off"],
    "vectors/model": ["test_vectors.py", "test_query.py"],
    "encoder/model": ["test_encoder_model.py",
                      "test_promises.py::test_a_space_before_mask_belongs_to_the_blank",
                      "test_promises.py::test_generate_conditions_on_the_last_max_len_pieces"],
    "corpus": ["test_corpus.py", "test_train.py"],
    "io": ["test_store.py", "test_safety.py", "test_interrupts.py"],
    "classify/nb": ["test_classify_nb.py"],
    "classify/nb_kernels": ["test_classify_nb.py"],
    "classify/byte_ids_kernels": ["test_classify_byte_ids.py"],
}

_COMPARE_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                 ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
                 ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.Div: ast.Mult,
               ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitAnd: ast.BitOr,
               ast.BitOr: ast.BitAnd}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
           ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.BitAnd: "&", ast.BitOr: "|", ast.And: "and", ast.Or: "or"}


@dataclass
class Mutant:
    module: str
    index: int  # position among the module's mutation sites (stable for a given source)
    line: int
    what: str
    status: str = ""  # killed | survived | timeout | error


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring expressions (never mutated: they change nothing)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0]))
    return out


def _annotations(tree: ast.AST) -> set[int]:
    """ids of every node inside a type annotation (never evaluated here: ``from __future__
    import annotations``), so ``str | None`` is no mutation site."""
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for r in roots for n in ast.walk(r)}


def _sites(tree: ast.AST):
    """Yield (node, description, apply) for every mutation site, in a fixed order.

    ``apply()`` edits the tree in place."""
    skip = _docstrings(tree) | _annotations(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                new = _COMPARE_SWAP.get(type(op))
                if new:
                    yield node, f"{_SYMBOL[type(op)]} -> {_SYMBOL[new]}", \
                        (lambda n=node, k=k, new=new: n.ops.__setitem__(k, new()))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            yield node, f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}", \
                (lambda n=node, new=new: setattr(n, "op", new()))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            new = _BINOP_SWAP.get(type(node.op))
            if new:
                yield node, f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}", \
                    (lambda n=node, new=new: setattr(n, "op", new()))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not x -> bool(x)", \
                (lambda n=node: setattr(n, "operand", ast.UnaryOp(ast.Not(), n.operand)))
        elif isinstance(node, ast.Constant) and type(node.value) in (bool, int):
            v = node.value
            new = (not v) if isinstance(v, bool) else (1 if v == 0 else 0 if v == 1 else v + 1)
            yield node, f"{v!r} -> {new!r}", (lambda n=node, new=new: setattr(n, "value", new))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            yield node, "return x -> return None", (lambda n=node: setattr(n, "value", None))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            yield node, "call statement removed", (lambda n=node: setattr(n, "value", ast.Constant(None)))
        elif isinstance(node, ast.If):
            yield node, "if c -> if not c", \
                (lambda n=node: setattr(n, "test", ast.UnaryOp(ast.Not(), n.test)))


def mutants(module: str) -> list[Mutant]:
    tree = ast.parse(_path(ROOT, module).read_text(encoding="utf-8"))
    return [Mutant(module, i, node.lineno, what) for i, (node, what, _) in enumerate(_sites(tree))]


def mutated_source(module: str, index: int) -> str:
    tree = ast.parse(_path(ROOT, module).read_text(encoding="utf-8"))
    for i, (_, _, apply) in enumerate(_sites(tree)):
        if i == index:
            apply()
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    raise IndexError(index)


def _path(tree_root: Path, module: str) -> Path:
    return tree_root / "embedkit" / f"{module}.py"


# The editable install maps ``embedkit.cli`` to the *installed* tree's cli/ (package_dir), and
# PYTHONPATH alone cannot undo that: embedkit/ has no cli/ in it. This sitecustomize, first on the
# copy's PYTHONPATH (so every child process, the ``embedkit`` script included, loads it), makes
# ``embedkit.cli`` the copy's cli/.
_SITECUSTOMIZE = """\
import importlib.util, sys
_CLI = {cli!r}

class _CopyCli:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "embedkit.cli":
            return None
        return importlib.util.spec_from_file_location(
            name, _CLI + "/__init__.py", submodule_search_locations=[_CLI])

sys.meta_path.insert(0, _CopyCli)
"""


def _copy_tree(dest: Path) -> Path:
    """A copy of the project at dest/main, timestamps kept (Numba's caches stay valid), with
    ../shared pointing at the real shared data so data tests run as they do here, and
    dest/site/sitecustomize.py pointing ``embedkit.cli`` at the copy."""
    tree = dest / "main"
    shutil.copytree(ROOT, tree, symlinks=True, copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns(".git", ".pytest_cache", ".hypothesis", "*.egg-info"))
    shared = ROOT.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared)
    (dest / "site").mkdir()
    (dest / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(cli=str(tree / "cli")))
    return tree


def _env(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=f"{tree.parent / 'site'}{os.pathsep}{tree}",
                PYTHONDONTWRITEBYTECODE="1")


def _check_imports(tree: Path) -> None:
    """Refuse to run when the copy's tests would import another tree's code: every mutant would
    survive (or be tested against the wrong code)."""
    code = "import embedkit, embedkit.cli; print(embedkit.__file__); print(embedkit.cli.__file__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=tree, env=_env(tree),
                       capture_output=True, text=True)
    files = r.stdout.split()
    if r.returncode or len(files) != 2 or not all(Path(f).is_relative_to(tree) for f in files):
        sys.exit(f"mutation: the copy at {tree} imports {files or r.stderr.strip()}, not its own "
                 f"embedkit/ and cli/")


def _run_tests(tree: Path, tests: list[str], timeout: float, show_failure: bool = False) -> str:
    env = _env(tree)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           *[str(tree / "tests" / t) for t in tests]]
    # Its own session, killed as a whole: a mutant that makes a CLI subprocess of a test loop
    # forever must not leave that process spinning after pytest is gone.
    p = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = None
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
    if out is None:
        return "timeout"
    if p.returncode == 0:
        return "survived"
    if show_failure:
        print(out.decode(errors="replace")[-3000:], file=sys.stderr)
    # tests failed, interrupted (collection error), internal error; or pytest itself killed by a
    # signal (a mutated kernel reading out of bounds crashes the process: the suite noticed)
    if p.returncode in (1, 2, 3) or p.returncode < 0:
        return "killed"
    return "error"


def _pick(ms: list[Mutant], limit: int | None) -> list[Mutant]:
    """``limit`` mutants spread evenly over the module (deterministic)."""
    if limit is None or limit >= len(ms):
        return ms
    step = len(ms) / limit
    return [ms[int(i * step)] for i in range(limit)]


def select(module: str, limit: int | None, only: list[int] | None) -> list[Mutant]:
    ms = mutants(module)
    return [m for m in ms if m.index in only] if only else _pick(ms, limit)


def run(modules: list[str], limit: int | None, jobs: int, timeout: float | None,
        quiet: bool, only: list[int] | None = None, tests: list[str] | None = None) -> list[Mutant]:
    work = {m: select(m, limit, only) for m in modules}
    with tempfile.TemporaryDirectory(prefix="embedkit-mutation-") as tmp:
        trees: queue.Queue = queue.Queue()
        for j in range(jobs):
            (Path(tmp) / str(j)).mkdir()
            tree = _copy_tree(Path(tmp) / str(j))
            _check_imports(tree)
            trees.put(tree)
        done: list[Mutant] = []
        for module, ms in work.items():
            module_tests = tests or MODULES[module]
            tree = trees.get()
            t0 = time.perf_counter()
            base = _run_tests(tree, module_tests, timeout or 1800, show_failure=True)
            elapsed = time.perf_counter() - t0
            trees.put(tree)
            if base != "survived":  # abort: a failing baseline would count every mutant as killed
                sys.exit(f"mutation: {module}: the unmutated tests do not pass ({base}); "
                         f"nothing mutated")
            limit_s = timeout or max(60.0, 3 * elapsed)
            if not quiet:
                print(f"{module}: {len(ms)} mutants, tests {', '.join(module_tests)} "
                      f"(clean run {elapsed:.0f} s, timeout {limit_s:.0f} s)", file=sys.stderr)

            def one(m: Mutant) -> Mutant:
                tree = trees.get()
                target = _path(tree, m.module)
                original = target.read_bytes()
                try:
                    target.write_text(mutated_source(m.module, m.index), encoding="utf-8")
                    m.status = _run_tests(tree, module_tests, limit_s)
                finally:
                    target.write_bytes(original)
                    trees.put(tree)
                if not quiet:
                    print(f"  {m.status:8s} {m.module}.py:{m.line}  {m.what}", file=sys.stderr)
                return m

            with ThreadPoolExecutor(jobs) as pool:
                done.extend(pool.map(one, ms))
    return done


def report(results: list[Mutant]) -> str:
    lines = ["| module | mutants | killed | timeout | survived | killed % |", "|---|---|---|---|---|---|"]
    by: dict[str, list[Mutant]] = {}
    for m in results:
        by.setdefault(m.module, []).append(m)
    for module, ms in by.items():
        n = len(ms)
        k = sum(m.status == "killed" for m in ms)
        t = sum(m.status == "timeout" for m in ms)
        s = sum(m.status in ("survived", "error") for m in ms)
        lines.append(f"| {module} | {n} | {k} | {t} | {s} | {100 * (k + t) / n:.0f} |")
    survivors = [m for m in results if m.status in ("survived", "error")]
    if survivors:
        lines += ["", "survivors (kill with an assertion, or explain as equivalent):"]
        lines += [f"  embedkit/{m.module}.py:{m.line}  {m.what}" + (" (error)" if m.status == "error" else "")
                  for m in survivors]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", action="append", choices=sorted(MODULES),
                    help="module to mutate (repeatable; default: all)")
    ap.add_argument("--max-mutants", type=int, help="at most N mutants per module, spread evenly")
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once (one tree copy each)")
    ap.add_argument("--timeout", type=float,
                    help="seconds per test run (default: 3x the clean run, at least 60)")
    ap.add_argument("--only", type=int, action="append",
                    help="run only mutant #N (the index --list shows; repeatable), e.g. survivors")
    ap.add_argument("--tests", action="append",
                    help="run this test file or node id (relative to tests/; repeatable) instead of "
                         "the module's mapped tests, e.g. to confirm a new test kills --only N")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-mutant lines on stderr")
    a = ap.parse_args(argv)
    modules = a.module or list(MODULES)
    if a.jobs < 1 or (a.max_mutants is not None and a.max_mutants < 1):
        ap.error("--jobs and --max-mutants must be at least 1")
    if a.list:
        for module in modules:
            for m in select(module, a.max_mutants, a.only):
                print(f"embedkit/{module}.py:{m.line}\t#{m.index}\t{m.what}")
        return 0
    results = run(modules, a.max_mutants, a.jobs, a.timeout, a.quiet, a.only, a.tests)
    print(report(results))
    if a.json:
        a.json.write_text(json.dumps([m.__dict__ for m in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
