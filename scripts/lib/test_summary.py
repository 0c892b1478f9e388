#!/usr/bin/env python3
"""The closing summary of scripts/test.sh, counted from the runners' own output.

Rust counts come from libtest's `test result:` lines of every `cargo test` log;
a test named `ignored` in one log but run in another (the real-VM stage runs
the ignored tests whose conditions it provides) counts once, as run. Tests
that skipped at run time (crates/testkit writes them to the skips file) are
moved from passed to skipped. pytest counts come from its JUnit XML.

Exit status 1 when any test or stage failed; the last line is
`Total: N passed, M failed, K skipped`.
"""

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

RUNNING = re.compile(r"^\s+Running (?:unittests )?\S+ \((?:.*/)?([A-Za-z0-9_]+)-[0-9a-f]+\)")
DOC_TESTS = re.compile(r"^\s+Doc-tests (\S+)")
STARTED = re.compile(r"^test (\S+) \.\.\. ?(.*)$")
RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
FAILURE_NAME = re.compile(r"^    (\S+)$")


@dataclass
class Rust:
    passed: int = 0
    failed: int = 0
    ran: set = field(default_factory=set)
    ignored: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def read(self, log: Path) -> None:
        binary = "?"
        # libtest prints "failures:" twice: before each failed test's output
        # ("---- name stdout ----"), then before the plain list of names.
        # Only a "failures:" followed directly by a name opens the list.
        in_failures = after_heading = False
        for line in log.read_text(errors="replace").splitlines():
            name = FAILURE_NAME.match(line)
            if after_heading:
                in_failures, after_heading = name is not None, False
            if m := RUNNING.match(line):
                binary, in_failures = m.group(1), False
            elif m := DOC_TESTS.match(line):
                binary, in_failures = f"doc:{m.group(1)}", False
            elif m := RESULT.match(line):
                self.passed += int(m.group(1))
                self.failed += int(m.group(2))
                in_failures = False
            elif line == "failures:":
                after_heading = True
            elif in_failures and name:
                self.failures.append(f"{binary}::{name.group(1)}")
            elif m := STARTED.match(line):
                key, outcome = f"{binary}::{m.group(1)}", m.group(2)
                if outcome.startswith("ignored"):
                    reason = outcome.partition(", ")[2] or "marked #[ignore] without a reason"
                    self.ignored.setdefault(key, reason)
                else:
                    self.ran.add(key)

    def skipped(self) -> dict:
        return {k: v for k, v in self.ignored.items() if k not in self.ran}


@dataclass
class Pytest:
    passed: int = 0
    failed: int = 0
    skipped: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def read(self, xml: Path) -> None:
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                self.failed += 1
                self.failures.append(name)
            elif (skip := case.find("skipped")) is not None:
                self.skipped[name] = skip.get("message", "")
            else:
                self.passed += 1


def runtime_skips(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    skips = {}
    for line in path.read_text(errors="replace").splitlines():
        test, _, reason = line.partition("\t")
        skips.setdefault(test, reason)
    return skips


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust", action="append", default=[], type=Path)
    ap.add_argument("--pytest", action="append", default=[], type=Path)
    ap.add_argument("--skips", type=Path)
    ap.add_argument("--stage", action="append", default=[], help="NAME=ok|failed|skipped[:why]")
    args = ap.parse_args()

    rust = Rust()
    for log in args.rust:
        if log.exists():
            rust.read(log)
    py = Pytest()
    for xml in args.pytest:
        if xml.exists():
            py.read(xml)

    skipped_at_run_time = runtime_skips(args.skips)
    rust_skipped = {**rust.skipped(), **skipped_at_run_time}
    rust_passed = rust.passed - len(skipped_at_run_time)

    stages = [s.partition("=") for s in args.stage]
    failed_stages = [name for name, _, status in stages if status.startswith("failed")]

    print("==> summary")
    print("stages: " + "; ".join(f"{name} {status}" for name, _, status in stages))
    if rust.failures or py.failures:
        print(f"failed tests ({len(rust.failures) + len(py.failures)}):")
        for name in rust.failures + py.failures:
            print(f"  {name}")
    all_skipped = {**rust_skipped, **py.skipped}
    if all_skipped:
        print(f"skipped tests ({len(all_skipped)}):")
        for name, reason in sorted(all_skipped.items()):
            print(f"  {name}: {reason}")
    if failed_stages:
        print("FAILED stages: " + ", ".join(failed_stages))
    print(f"pytest: {py.passed} passed, {py.failed} failed, {len(py.skipped)} skipped")
    print(f"Rust: {rust_passed} passed, {rust.failed} failed, {len(rust_skipped)} skipped")
    total_failed = rust.failed + py.failed
    print(f"Total: {rust_passed + py.passed} passed, {total_failed} failed, {len(all_skipped)} skipped")
    return 1 if total_failed or failed_stages else 0


if __name__ == "__main__":
    sys.exit(main())
