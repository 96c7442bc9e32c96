"""`make mutate`: mutation testing of the modules whose promises matter most (mutmut).

    python scripts/mutate.py                               # every module
    python scripts/mutate.py gateway/ingest/batcher.py     # one module (make mutate MODULE=...)
    python scripts/mutate.py --report                      # the last results, no new run

Which files are mutated and which tests run is mutmut's configuration, ``[tool.mutmut]`` in
pyproject.toml: ``only_mutate`` lists the modules, ``pytest_add_cli_args_test_selection`` the
tests. mutmut runs that selection once to learn which tests execute which function, then runs
each mutant against only those tests. ``FUNCTIONS`` below narrows a module to the functions that
hold its promise where the rest of the file is something else (the store's read side, the
adapters' parsing and test helpers).

The report counts, per module, the mutants that were killed (a test failed or timed out) and
the survivors. A survivor is *justified* when docs/testing.md names it (its mutmut name in
backquotes, with the reason); the script exits 1 while any survivor is unexplained.
mutmut keeps its copy of the code, the test-to-function map and the results under mutants/
(git-ignored); the named mutants are re-tested on every run. ``mutmut show NAME`` prints a
mutant's diff, ``mutmut browse`` browses them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
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


@dataclass
class ModuleResult:
    module: str
    mutants: int
    killed: int
    survivors: list[str]
    justified: list[str]
    not_run: int

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.mutants if self.mutants else 100.0


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
        (k for k, code in mine.items() if status_by_exit_code[code] not in KILLED),
        key=_natural,
    )
    return ModuleResult(
        module=module,
        mutants=len(mine),
        killed=sum(statuses[s] for s in KILLED),
        survivors=survivors,
        justified=[k for k in survivors if f"`{k}`" in justified_text],
        not_run=statuses["not checked"],
    )


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def report(modules: list[str]) -> int:
    justified_text = DOCS.read_text() if DOCS.exists() else ""
    rows = [results(module, justified_text) for module in modules]
    print()
    print("| module | mutants | killed | survived, justified | unexplained | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        unexplained = len(row.survivors) - len(row.justified)
        print(
            f"| `{row.module}` | {row.mutants} | {row.killed} | {len(row.justified)} "
            f"| {unexplained} | {row.score:.1f}% |"
        )
    unexplained_names = [
        (name, row.module) for row in rows for name in row.survivors if name not in row.justified
    ]
    if unexplained_names:
        print("\nsurvivors not explained in docs/testing.md (`mutmut show NAME` for the diff):")
        for name, _module in unexplained_names:
            print(f"  {name}")
        return 1
    return 0


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
    args = parser.parse_args()
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
