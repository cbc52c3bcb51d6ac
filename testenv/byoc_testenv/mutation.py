"""Mutation testing of the pure core (`make mutation`): mutmut, one module at a time, against its fast unit tests.

mutmut 3 names mutants after the module path relative to the directory it runs in and copies that tree into
``mutants/``. The packages here live one level down (``operator/byoc_operator``), so each module gets a workspace
``mutants/<name>/`` that links the package and ``tests`` at its top, with its own ``setup.cfg``. The report lists
the score per module and every surviving mutant, marked equivalent (with the reason) where that has been shown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL = 0.90
KEPT = "<!-- written by hand below this line: kept when the report is made again -->"


@dataclass(frozen=True)
class Equivalent:
    """A mutant that cannot change behaviour, and why; it matches every survivor of `function` whose mutated line
    contains `mutated`, so it outlives renumbering."""

    function: str
    mutated: str
    why: str


@dataclass(frozen=True)
class Target:
    """One module of the pure core and the unit tests that must pin it down."""

    name: str
    package: str  # the package directory, relative to the repo root
    module: str  # the file, relative to the package's parent
    tests: tuple[str, ...]
    # survivors shown not to change behaviour: matched by function and a piece of the mutated line
    equivalent: tuple[Equivalent, ...] = ()


_OR_ZERO = "`or 0` makes a missing field 0 whatever the default (the API server leaves zero fields out)"
_OVERWRITTEN = (
    "the no-problem default of Ready is replaced on every path that reaches it (scaled to zero, converged, or not hard)"
)
_SUFFIX = "the name is only tested with endswith(), and every longer tail of the path ends the same way"
_FALSY = "condition() only tests truthiness: None reads as False"
_SAME_RANK = "a rank ends with the worker's key, so two equal ranks are the same worker (left out, or the same holder)"
_NOT_JSON = "a ConfigMap without the document reads as [] either way: the text that takes its place is no JSON"


def _missing_runner_url(route: str) -> tuple[Equivalent, ...]:
    """A /discovery runner without a url, read with another default: no /apps/<route>/ is in it either way."""
    return tuple(
        Equivalent(
            "our_runners", f'url = str(runner.get("url", {d}))', f"no /apps/<{route}>/ route is in it either way"
        )
        for d in ("None", "", '"XXXX"')
    )


# The rendering helpers are pinned through what they render: the manifests the render tests read.
_RENDER_TESTS = tuple(
    f"tests/operator/test_{name}.py"
    for name in (
        "render_units",
        "render",
        "render_drain",
        "render_placement",
        "pod_policy",
        "origins",
        "static_runners",
    )
)

TARGETS = (
    Target(
        "status",
        "operator/byoc_operator",
        "byoc_operator/status.py",
        ("tests/operator/test_status.py", "tests/operator/test_status_units.py"),
        (
            *(
                Equivalent("compute_status", f'get("{field}", {default}) or 0', _OR_ZERO)
                for field in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas")
                for default in ("None", "")
            ),
            Equivalent("compute_status", "ready_c = None", _OVERWRITTEN),
            Equivalent("compute_status", 'ready_c = (True, "", "")', _OVERWRITTEN),
            Equivalent("compute_status", 'ready_c = (False, "XXXX", "")', _OVERWRITTEN),
            Equivalent("compute_status", 'ready_c = (False, "", "XXXX")', _OVERWRITTEN),
            *(
                Equivalent(
                    "summarise", f"most_common({n})[0]", "the first of most_common(n) is the most common for any n"
                )
                for n in ("None", "2")
            ),
            *(
                Equivalent("pod_problem", f'why = waiting.get("reason", {d})', "a missing reason matches no known one")
                for d in ("None", "", '"XXXX"')
            ),
            *(
                Equivalent("pod_problem", f'detail = waiting.get("message", {d})', "_join leaves out a missing detail")
                for d in ("None", "")
            ),
            Equivalent("invalid_spec_status", "condition(READY, None,", _FALSY),
            Equivalent("invalid_spec_status", "condition(PROGRESSING, None,", _FALSY),
        ),
    ),
    Target(
        "autoscale",
        "operator/byoc_operator",
        "byoc_operator/autoscale.py",
        ("tests/operator/test_autoscale.py", "tests/operator/test_autoscale_units.py"),
        tuple(
            Equivalent("active_sessions", f'health.get("status", {default})).upper()', why)
            for default, why in (
                ("", 'the key is there or the default is None, which reads NONE: no state, as "" is'),
                ("None", 'None reads NONE: no state, as "" is'),
                ('"XXXX"', "XXXX is no state"),
            )
        ),
    ),
    Target(
        "registration",
        "operator/byoc_operator",
        "byoc_operator/registration.py",
        (
            "tests/operator/test_registration.py",
            "tests/operator/test_registration_units.py",
            "tests/operator/test_orchestrator_refs.py",
        ),
        _missing_runner_url("pod"),
    ),
    Target("load", "edge/byoc_edge", "byoc_edge/router/load.py", ("tests/router/test_load_units.py",)),
    Target(
        "placement",
        "edge/byoc_edge",
        "byoc_edge/router/placement.py",
        ("tests/router/test_placement_units.py",),
        (
            Equivalent(
                "start_order",
                "elif pod.load is None and pod.load.state == ERROR:",
                "an ERROR pod has no free slot (PodLoad.free), so skipping this branch leaves it out all the same",
            ),
        ),
    ),
    Target(
        "pins",
        "edge/byoc_edge",
        "byoc_edge/router/pins.py",
        ("tests/router/test_pins_units.py",),
        (
            Equivalent(
                "PinTable.unpin",
                "self._by_key.pop(k, )",
                "every key of a pin in the table maps to it (pin() unpins whole pins first), so pop never misses",
            ),
        ),
    ),
    Target("advert", "edge/byoc_edge", "byoc_edge/registrar/advert.py", ("tests/registrar/test_advert_units.py",)),
    Target(
        "protocol",
        "runtime/byoc_runtime",
        "byoc_runtime/trickle/protocol.py",
        ("tests/trickle/test_protocol_units.py",),
        (
            Equivalent("channel_label", 'name = path.partition("/")[2]', _SUFFIX),
            Equivalent("channel_label", 'name = path.rpartition("XX/XX")[2]', _SUFFIX),
            Equivalent("channel_label", 'name.endswith(f"-{k}")), None)', 'None and "" both read as no kind'),
        ),
    ),
    Target(
        "liverunner",
        "edge/byoc_edge",
        "byoc_edge/liverunner.py",
        (
            "tests/liverunner/test_protocol.py",
            "tests/liverunner/test_wire_units.py",
            "tests/registrar/test_advert_units.py",
        ),
        (
            Equivalent("unregister_path", "safe='XXXX'", "X is never quoted: as a safe character it adds nothing"),
            Equivalent(
                "SessionContext.from_headers",
                'control = (headers.get(SESSION_CONTROL_HEADER) or "XXXX")',
                "a missing control URL is refused either way: XXXX is no http(s) URL",
            ),
        ),
    ),
    Target(
        "claims",
        "operator/byoc_operator",
        "byoc_operator/claims.py",
        ("tests/operator/test_claims.py",),
        (
            Equivalent("holders", "other.rank > mine.rank", _SAME_RANK),
            Equivalent("holders", "other.rank <= best[url].rank", _SAME_RANK),
        ),
    ),
    Target(
        "pod_policy",
        "operator/byoc_operator",
        "byoc_operator/pod_policy.py",
        ("tests/operator/test_pod_policy.py",),
    ),
    Target(
        "static_runners",
        "operator/byoc_operator",
        "byoc_operator/static_runners.py",
        ("tests/operator/test_static_runners.py",),
        _missing_runner_url("label"),
    ),
    Target("advertise", "operator/byoc_operator", "byoc_operator/advertise.py", ("tests/operator/test_advertise.py",)),
    Target("slots", "operator/byoc_operator", "byoc_operator/slots.py", ("tests/operator/test_slots.py",)),
    Target(
        "drift",
        "operator/byoc_operator",
        "byoc_operator/drift.py",
        ("tests/operator/test_drift.py",),
        tuple(
            Equivalent(
                "contains", f"zip(live, desired, {strict})", "the lengths are compared first: zip never runs short"
            )
            for strict in ("strict=None)", ")", "strict=False)")
        ),
    ),
    *(
        Target(f"render.{name}", "operator/byoc_operator", f"byoc_operator/render/{name}.py", _RENDER_TESTS)
        for name in ("pricing", "security", "probes", "origins", "network", "placement", "service")
    ),
    Target(
        "render.token",
        "operator/byoc_operator",
        "byoc_operator/render/token.py",
        _RENDER_TESTS,
        (
            Equivalent(
                "render_token_secret",
                "assert worker.generates_token or ref is not None",
                "a precondition both callers (children, reconcile) keep: they render the Secret only when the worker "
                "generates its token, which sets the ref, so no path reaches the assert with either part false",
            ),
        ),
    ),
    Target("render.secret_files", "operator/byoc_operator", "byoc_operator/render/secret_files.py", _RENDER_TESTS),
    Target(
        "render.runners",
        "operator/byoc_operator",
        "byoc_operator/render/runners.py",
        _RENDER_TESTS,
        (
            *(
                Equivalent("_entry_ip", f'entry.get("runner_url", {d})', "an entry without runner_url has no host")
                for d in ("None", "", '"XXXX"')
            ),
            Equivalent("configmap_entries", '.get(RUNNERS_KEY) or "XXXX"', _NOT_JSON),
            Equivalent("configmap_entries", 'get("runners") if (text) or True else []', _NOT_JSON),
            Equivalent("runner_entries", "pod_address(pod, serving=None)", "serving is only tested for truth"),
        ),
    ),
)


@dataclass(frozen=True)
class Survivor:
    name: str
    function: str
    diff: str  # "-before +after", the changed lines only
    mutated: str  # the mutated line(s), whitespace folded

    def equivalent(self, rules: tuple[Equivalent, ...]) -> str | None:
        return next((e.why for e in rules if e.function == self.function and e.mutated in self.mutated), None)


@dataclass(frozen=True)
class Result:
    target: Target
    killed: int
    survivors: tuple[Survivor, ...]
    no_tests: int
    other: dict[str, int]

    @property
    def equivalent(self) -> list[tuple[Survivor, str]]:
        return [(s, why) for s in self.survivors if (why := s.equivalent(self.target.equivalent))]

    @property
    def alive(self) -> list[Survivor]:
        return [s for s in self.survivors if not s.equivalent(self.target.equivalent)]

    @property
    def score(self) -> float:
        counted = self.killed + len(self.alive)
        return self.killed / counted if counted else 1.0


def workspace(target: Target) -> Path:
    return ROOT / "mutants" / target.name


def prepare(target: Target) -> Path:
    """A fresh workspace: the package and tests linked at its top, pytest's settings, mutmut's config."""
    ws = workspace(target)
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    package = ROOT / target.package
    (ws / package.name).symlink_to(package)
    (ws / "tests").symlink_to(ROOT / "tests")
    shutil.copy(ROOT / "pytest.ini", ws / "pytest.ini")
    tests = "\n    ".join(target.tests)
    (ws / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths = {package.name}\n"
        f"only_mutate = {target.module}\n"
        f"pytest_add_cli_args_test_selection =\n    {tests}\n"
        "pytest_add_cli_args = -p no:cacheprovider -q\n"
    )
    return ws


def run(target: Target) -> None:
    ws = prepare(target)
    env = _env()
    log = ws / "mutmut.log"
    print(f"== mutmut {target.module} against {' '.join(target.tests)} (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("wb") as out:
        rc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", "2"], cwd=ws, env=env, stdout=out, stderr=out
        ).returncode
    if rc:
        sys.exit(f"mutmut failed on {target.module} (exit {rc}); see {log}")


def _env(extra: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / p) for p in ("operator", "edge", "runtime", "testenv", ".")]
    env["PYTHONPATH"] = os.pathsep.join([str(extra), *paths] if extra else paths)
    return env


def recheck(target: Target, timeouts: bool = False) -> None:
    """Run the current unit tests against each survivor of the last run (mutmut's MUTANT_UNDER_TEST switch), and
    record the ones they now kill: new tests are checked without mutating the whole module again."""
    mutated = workspace(target) / "mutants"
    meta_path = mutated / f"{target.module}.meta"
    data = json.loads(meta_path.read_text())
    shutil.copytree(ROOT / "tests", mutated / "tests", dirs_exist_ok=True)
    shutil.copy(ROOT / "pytest.ini", mutated / "pytest.ini")
    for name, code in data["exit_code_by_key"].items():
        # a timeout on a busy machine may be a false one
        if not (code == 0 or (timeouts and _VERDICTS.get(code) == "timeout")) or _is_equivalent(target, name):
            continue
        env = _env(mutated) | {"MUTANT_UNDER_TEST": name}
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--timeout=120", *target.tests]
        rc = subprocess.run(command, cwd=mutated, env=env, capture_output=True, check=False).returncode
        print(f"{name}: {'killed' if rc == 1 else 'survived' if rc == 0 else f'exit {rc}'}", flush=True)
        if rc in (0, 1):
            data["exit_code_by_key"][name] = rc
            meta_path.write_text(json.dumps(data, indent=4))


def _is_equivalent(target: Target, name: str) -> bool:
    """Whether a surviving mutant is one of the target's equivalent ones (read from the workspace's diff)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(workspace(target))
    try:
        survivor = _survivor(name, get_diff_for_mutant(name, path=Path(target.module)))
    finally:
        os.chdir(cwd)
    return survivor.equivalent(target.equivalent) is not None


def _survivor(name: str, diff: str) -> Survivor:
    changed = [" ".join(line.split()) for line in diff.splitlines()[2:] if line[:1] in "+-"]
    # module-level x_f, methods xǁClassǁf
    function = name.rpartition(".")[2].partition("__mutmut_")[0].removeprefix("x_")
    function = function.removeprefix("xǁ").replace("ǁ", ".")
    after = " ".join(line[2:] for line in changed if line.startswith("+"))
    return Survivor(name, function, " ".join(changed), after)


def collect(target: Target) -> Result:
    """Read mutmut's verdicts and the diff of each survivor from the workspace."""
    ws = workspace(target)
    meta = json.loads((ws / "mutants" / f"{target.module}.meta").read_text())["exit_code_by_key"]
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(ws)
    try:
        killed, no_tests, other, survivors = 0, 0, dict[str, int](), []
        for name, code in sorted(meta.items(), key=lambda kv: _order(kv[0])):
            if code in (1, 3):
                killed += 1
            elif code in (5, 33):
                no_tests += 1
            elif code == 0:
                survivors.append(_survivor(name, get_diff_for_mutant(name, path=Path(target.module))))
            else:
                status = "not checked" if code is None else _VERDICTS.get(code, f"exit {code}")
                other[status] = other.get(status, 0) + 1
    finally:
        os.chdir(cwd)
    return Result(target, killed, tuple(survivors), no_tests, other)


# mutmut's exit codes other than killed (1, 3), survived (0) and no tests (5, 33)
_VERDICTS = {36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 34: "skipped", -11: "crash"}


def _order(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number)


def _other(r: Result) -> str:
    """Timeouts, crashes and, for an interrupted run, the mutants not checked yet."""
    return ", ".join(f"{n} {what}" for what, n in sorted(r.other.items())) or "-"


def report(results: list[Result], path: Path) -> None:
    lines = [
        "# Mutation testing of the pure core",
        "",
        "Made by `make mutation` (mutmut 3.8.1, one module at a time against its fast unit tests only; "
        "`python -m byoc_testenv.mutation --help`). Score = killed / (killed + surviving), equivalent survivors "
        f'excluded and listed with the reason. Goal: {GOAL:.0%} on every module. "No tests" counts mutants in '
        "functions that none of the selected tests calls (the I/O parts, e.g. `autoscale.Autoscaler`, which the "
        'cluster suites cover); "other" counts timeouts and mutants a run did not reach. Survivors and timeouts of '
        "a run can be re-run against the current tests with `--recheck` (mutmut's `MUTANT_UNDER_TEST` switch), "
        "which records the ones now killed.",
        "",
        "| module | tests | killed | surviving | equivalent | no tests | other | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        tests = ", ".join(f"`{Path(t).name}`" for t in r.target.tests)
        lines.append(
            f"| `{r.target.package.rpartition('/')[0] or '.'}/{r.target.module}` | {tests} | {r.killed} | "
            f"{len(r.alive)} | {len(r.equivalent)} | {r.no_tests} | {_other(r)} | **{r.score:.0%}** |"
        )
    for r in results:
        lines += ["", f"## `{r.target.module}`", ""]
        if r.equivalent:
            lines += ["Equivalent (behaviour cannot change):", ""]
            lines += [f"- `{s.name.rpartition('.')[2]}` `{s.diff}`: {why}" for s, why in r.equivalent]
            lines.append("")
        if r.alive:
            lines += ["Surviving (not pinned by a unit test):", ""]
            lines += [f"- `{s.name.rpartition('.')[2]}` `{s.diff}`" for s in r.alive]
        else:
            lines.append("No surviving mutant outside the equivalent ones.")
    kept = path.read_text().partition(KEPT)[2] if path.exists() else ""
    path.write_text("\n".join(lines) + ("\n\n" + KEPT + kept if kept else "\n"))


def main(argv: list[str] | None = None) -> None:
    names = [t.name for t in TARGETS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(names)} (default: all)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the last runs")
    parser.add_argument("--recheck", action="store_true", help="run the current tests against the last survivors")
    parser.add_argument("--timeouts", action="store_true", help="with --recheck: the timed-out mutants too")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "mutation.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(names))
    if unknown:
        parser.error(f"unknown module(s): {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = [t for t in TARGETS if not args.modules or t.name in args.modules]
    for target in chosen:
        if args.recheck:
            recheck(target, args.timeouts)
        elif not args.report_only:
            run(target)
    results = [collect(t) for t in TARGETS if (workspace(t) / "mutants" / f"{t.module}.meta").exists()]
    report(results, args.report)
    for r in results:
        print(f"{r.target.module}: {r.score:.0%} ({r.killed} killed, {len(r.alive)} surviving)")
    low = [r.target.module for r in results if r.score < GOAL]
    if low:
        sys.exit(f"below {GOAL:.0%}: {', '.join(low)}")


if __name__ == "__main__":
    main()
