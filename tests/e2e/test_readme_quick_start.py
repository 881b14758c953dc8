"""The README's first submission, run as written, command by command, against the stack the fixtures start.

`make up` is replaced by the fixtures' stack: the commands' `http://127.0.0.1:8000` and `:8002`
are pointed at its ingest and aggregate, and `dmp admin keys create` at its store (by the environment
variables the services read). Every command must succeed; a command that reads is run again until
its answer stops changing from "received" (the pipeline is asynchronous), and an answer the README
shows as JSON must be exactly what the command printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests.conftest import Stack, eventually

ROOT = Path(__file__).resolve().parents[2]
SECTION = "Submitting and reading"
INGEST, AGGREGATE = "http://127.0.0.1:8000", "http://127.0.0.1:8002"


@dataclass
class Command:
    text: str
    shown: list[str] = field(default_factory=list)
    """The comment lines after it: what the README says it prints."""

    @property
    def reads(self) -> bool:
        return self.text.startswith("curl") and "-X POST" not in self.text


def section(readme: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, f"the README has a section `## {title}`"
    return match.group(1)


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M)


def complete(text: str) -> bool:
    """Whether `text` is one or more whole shell commands (bash parses it, no line continued)."""
    if text.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False).returncode == 0


def commands(block: str) -> list[Command]:
    found: list[Command] = []
    pending = ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.startswith("#")):
            if line.startswith("#") and found:
                found[-1].shown.append(line[1:].strip())
            continue
        pending += line + "\n"
        if complete(pending):
            found.append(Command(pending.strip()))
            pending = ""
    assert not pending, f"an unfinished command: {pending!r}"
    return found


def shown_json(command: Command) -> object | None:
    """The JSON the README shows a command printing, if it shows one whole."""
    text = " ".join(command.shown)
    try:
        return json.loads(text) if text.startswith(("{", "[")) else None
    except json.JSONDecodeError:
        return None


def settled(shell: Shell, command: str, expected: object | None) -> str | None:
    """What a read printed once the pipeline has decided: the JSON shown in the README, or any verdict."""
    status, output = shell.run(command)
    try:
        answer = json.loads(output) if status == 0 else None
    except json.JSONDecodeError:
        return None
    if expected is not None:
        return output if answer == expected else None
    return output if isinstance(answer, dict) and answer.get("status") not in (None, "received") else None


class Shell:
    """One bash session, so that variables set by one command are there for the next."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.marker = f"__done_{os.getpid()}__"

    def run(self, command: str) -> tuple[int, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{command}\necho; echo {self.marker} $?\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.startswith(self.marker):
                return int(line.split()[1]), "".join(lines).strip()
            lines.append(line)
        raise AssertionError(f"the shell ended during {command!r}: {''.join(lines)}")

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def test_the_readme_first_submission_works_as_written(stack: Stack) -> None:
    blocks = shell_blocks(section((ROOT / "README.md").read_text(), SECTION))
    steps = [c for block in blocks for c in commands(block)]
    assert len(steps) >= 5, steps
    env = {**os.environ, **stack.env}
    shell = Shell(env)
    try:
        for step in steps:
            command = step.text.replace(INGEST, stack.url("ingest")).replace(AGGREGATE, stack.url("aggregate"))
            status, output = shell.run(command)
            assert status == 0, f"{step.text}\nexited {status}: {output}"
            expected = shown_json(step)
            if step.reads:
                output = eventually(partial(settled, shell, command, expected), timeout=60,
                                    what=f"the answer the README shows to {step.text}")
            if expected is not None:
                assert json.loads(output) == expected, f"{step.text}\nprinted {output}"
            if "-X POST" in step.text:
                assert json.loads(output)["status"] == "received", output
        verdict = json.loads(shell.run('curl -s -H "Authorization: Bearer $OFFICER" '
                                       f'{stack.url("aggregate")}/v1/submissions/$ID')[1])
        assert verdict["status"] == "validated", verdict
    finally:
        shell.close()
