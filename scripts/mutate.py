"""`make mutate`: mutation testing of the modules whose promises matter most (mutmut).

    python scripts/mutate.py                               # every module
    python scripts/mutate.py gateway/ingest/batcher.py     # one module (make mutate MODULE=...)
    python scripts/mutate.py --report                      # the last results, no new run
    python scripts/mutate.py --try NAME tests/unit/x.py    # does this test kill mutant NAME?

Which files are mutated and which tests run is mutmut's configuration, ``[tool.mutmut]`` in
pyproject.toml: ``only_mutate`` lists the modules, ``pytest_add_cli_args_test_selection`` the
tests. mutmut runs that selection once to learn which tests execute which function, then runs
each mutant against only those tests. ``FUNCTIONS`` below narrows a module to the functions that
hold its promise where the rest of the file is something else (the store's read side, the
adapters' parsing and test helpers).

The report counts, per module, the mutants that were killed (a test failed or timed out) and
the survivors. A survivor is *justified* when docs/testing.md names it (its mutmut name in
backquotes, with the reason) or when it only changes words meant for a person (``TEXT_ONLY``:
the wording of a log line, or of an exception's message while its first argument, the reason
code the callers act on, stays the same); the script exits 1 while any survivor is
unexplained.
mutmut keeps its copy of the code, the test-to-function map and the results under mutants/
(git-ignored); the named mutants are re-tested on every run. ``mutmut show NAME`` prints a
mutant's diff, ``mutmut browse`` browses them.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "testing.md"
MUTMUT = Path(sys.executable).parent / "mutmut"

#: per module, the functions that hold its promise ("Class.method" or "function");
#: a module not listed here is mutated whole
FUNCTIONS: dict[str, tuple[str, ...]] = {
    # the write path; the read side, partitions and control messages are not mutated
    "gateway/storage/store.py": (
        "_text",
        "_json",
        "event_record",
        "EventStore.write_events",
        "EventStore.remember_nonce",
        "_same",
    ),
    # signature verification only: parsing is the adapters' other half (and fuzzed)
    "handlers/base.py": (
        "constant_time_equals",
        "hmac_digest",
        "check_basic_auth",
        "check_bearer_token",
        "check_replay_window",
        "parse_timestamp_header",
        "Adapter.verify_transport_auth",
        "Adapter.verify",
    ),
    "handlers/sns.py": (
        "signing_cert_host",
        "subscribe_url_host",
        "canonical_string",
        "_envelope",
        "_signature_fields",
        "_check_envelope",
        "_read_pinned_file",
        "_certificate_pem",
        "_parse_certificate",
        "verify_sns_message",
    ),
    "handlers/sendgrid.py": ("load_verification_key", "SendGridAdapter.verify"),
    "handlers/mailgun.py": (
        "sign",
        "MailgunAdapter.verify",
        "_form_signature",
        "_signature_block",
    ),
    "handlers/mandrill.py": ("mandrill_signature", "MandrillAdapter.verify"),
    "handlers/resend.py": ("_secret_bytes", "svix_signature", "_header", "ResendAdapter.verify"),
    "handlers/postal.py": ("load_public_key", "_load_pkcs1_der", "PostalAdapter.verify"),
    "handlers/ses.py": ("SesAdapter.verify",),
}

#: mutmut's exit-code verdicts folded into the report's columns
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


#: the classes of survivors that docs/testing.md justifies as a whole (see ``text_only``)
TEXT_ONLY = ("log text", "message text")


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules: list[str] = config["only_mutate"]
    return modules


def mutant_globs(module: str) -> list[str]:
    """mutmut's names for the mutants of ``module`` (``pkg.mod.x_func__mutmut_3``,
    ``pkg.mod.xǁClassǁmethod__mutmut_3``)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    functions = FUNCTIONS.get(module)
    if functions is None:
        return [f"{dotted}.*"]
    globs = []
    for function in functions:
        cls, _, method = function.rpartition(".")
        mangled = f"xǁ{cls}ǁ{method}" if cls else f"x_{function}"
        globs.append(f"{dotted}.{mangled}__mutmut_*")
    return globs


def _contains(node: ast.AST, line: int) -> bool:
    end = getattr(node, "end_lineno", None)
    return end is not None and node.lineno <= line <= end


def _calls_at(tree: ast.AST, line: int) -> list[ast.Call]:
    """The calls spanning ``line``, innermost first."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _contains(n, line)]
    return sorted(calls, key=lambda c: (c.end_lineno or c.lineno) - c.lineno)


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in ("log", "logger")
    )


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str))


def _without(tree: ast.AST, target: ast.AST) -> str:
    class Blank(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            return ast.Constant("<call>") if node is target else self.generic_visit(node)

    return ast.dump(Blank().visit(tree))


def text_only(original: str, mutant: str) -> str | None:
    """The ``TEXT_ONLY`` class of a mutant whose function reads ``mutant`` instead of
    ``original``: "log text" when the one changed line is inside a ``log.*`` call, "message
    text" when only the message arguments of an ``...Error(reason, message)`` call changed
    (the reason, its first argument, untouched); otherwise None."""
    before, after = original.splitlines(), mutant.splitlines()
    changed = [i + 1 for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b]
    if len(before) != len(after) or len(changed) != 1:
        return None
    line = changed[0]
    old_tree = ast.parse(textwrap.dedent(original))
    new_tree = ast.parse(textwrap.dedent(mutant))
    old_calls, new_calls = _calls_at(old_tree, line), _calls_at(new_tree, line)
    if any(_is_log_call(c) for c in old_calls) and any(_is_log_call(c) for c in new_calls):
        return "log text"
    if not old_calls or not new_calls:
        return None
    old, new = old_calls[0], new_calls[0]
    name = ast.unparse(old.func)
    if (
        name.endswith("Error")
        and ast.unparse(new.func) == name
        and old.args
        and new.args
        and ast.dump(old.args[0]) == ast.dump(new.args[0])
        and ast.dump(ast.List(old.keywords)) == ast.dump(ast.List(new.keywords))
        and all(_is_text(a) for a in old.args[1:] + new.args[1:])
        and _without(old_tree, old) == _without(new_tree, new)
    ):
        return "message text"
    return None


def _text_only_class(name: str, module: str) -> str | None:
    from mutmut.mutation.diff_apply import read_functions_from_index

    functions = read_functions_from_index(name, module)
    if functions is None:
        return None
    import libcst

    original, mutant = (libcst.Module([f]).code.strip("\n") for f in functions)
    try:
        return text_only(original, mutant)
    except SyntaxError:
        return None


@dataclass
class ModuleResult:
    module: str
    mutants: int
    killed: int
    survivors: list[str]
    justified: list[str]
    text_only: Counter[str]
    not_run: int

    @property
    def score(self) -> float:
        tested = self.mutants - self.not_run
        return 100.0 * self.killed / tested if tested else 100.0


def results(module: str, justified_text: str) -> ModuleResult:
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / (module + ".meta")
    exit_codes: dict[str, int | None] = {}
    if meta.exists():
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    globs = mutant_globs(module)
    mine = {k: v for k, v in exit_codes.items() if any(fnmatch.fnmatch(k, g) for g in globs)}
    statuses = Counter(status_by_exit_code[code] for code in mine.values())
    survivors = sorted(
        (
            k
            for k, code in mine.items()
            if status_by_exit_code[code] not in KILLED | {"not checked"}
        ),
        key=_natural,
    )
    classes = {k: _text_only_class(k, module) for k in survivors}
    return ModuleResult(
        module=module,
        mutants=len(mine),
        killed=sum(statuses[s] for s in KILLED),
        survivors=survivors,
        justified=[k for k in survivors if f"`{k}`" in justified_text or classes[k]],
        text_only=Counter(c for c in classes.values() if c),
        not_run=statuses["not checked"],
    )


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def report(modules: list[str]) -> int:
    justified_text = DOCS.read_text() if DOCS.exists() else ""
    rows = [results(module, justified_text) for module in modules]
    print()
    print(
        "| module | mutants | killed | survived: log/message text "
        "| survived: justified by name | unexplained | score |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        text = sum(row.text_only.values())
        named = len(row.justified) - text
        unexplained = len(row.survivors) - len(row.justified)
        print(
            f"| `{row.module}` | {row.mutants - row.not_run} | {row.killed} | {text} | {named} "
            f"| {unexplained} | {row.score:.1f}% |"
        )
    not_run = sum(row.not_run for row in rows)
    if not_run:
        print(f"\n{not_run} mutants not tested yet (an interrupted run?): not in the table")
    unexplained_names = [
        (name, row.module) for row in rows for name in row.survivors if name not in row.justified
    ]
    if unexplained_names:
        print("\nsurvivors not explained in docs/testing.md (`mutmut show NAME` for the diff):")
        for name, _module in unexplained_names:
            print(f"  {name}")
        return 1
    return 0


def try_mutant(name: str, tests: list[str]) -> int:
    """Run ``tests`` (the current ones, copied into mutants/) with mutant ``name`` switched
    on: exit 0 when they kill it, 1 when it survives."""
    for test in tests:
        path = Path(test.split("::")[0])
        target = ROOT / "mutants" / path
        if path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / path).read_bytes())
    environment = {**os.environ, "MUTANT_UNDER_TEST": name, "PY_IGNORE_IMPORTMISMATCH": "1"}
    pytest = Path(sys.executable).parent / "pytest"
    run = subprocess.run(
        [str(pytest), "-x", "-q", "-p", "no:randomly", *tests],
        cwd=ROOT / "mutants",
        env=environment,
        check=False,
    )
    killed = run.returncode != 0
    print(f"{name}: {'killed' if killed else 'SURVIVED'}")
    return 0 if killed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths, e.g. gateway/ingest/spool.py")
    parser.add_argument("--report", action="store_true", help="report the last run only")
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("MUTATE_JOBS", "2")),
        help="mutants tested at once (default 2, or $MUTATE_JOBS)",
    )
    parser.add_argument("--try", dest="try_mutant", metavar="NAME", help="see above")
    args = parser.parse_args()
    if args.try_mutant:
        return try_mutant(args.try_mutant, args.modules)
    known = configured_modules()
    modules = args.modules or known
    unknown = [m for m in modules if m not in known]
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate of pyproject.toml: {', '.join(unknown)}")
    if not args.report:
        globs = [g for module in modules for g in mutant_globs(module)]
        command = [str(MUTMUT), "run", "--max-children", str(args.jobs), *globs]
        run = subprocess.run(command, cwd=ROOT, check=False)
        if run.returncode != 0:
            print(f"mutmut exited {run.returncode}", file=sys.stderr)
            return run.returncode
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())
