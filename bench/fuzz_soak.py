"""Fuzz the core's two doors with hypothesis: `Show.set_opt` and `Trainer.command`.

    python bench/fuzz_soak.py                   # 10,000 cases of each, a few minutes
    python bench/fuzz_soak.py --cases 500

Every case must end in success or in a clear error: an OptionError (set_opt) or a
CommandError (command) whose message names the option, property or value; never another
exception, never a hang (each call gets HANG seconds). Afterwards the trainer still answers
`statuses()` and a SIGKILLed fly is respawned. tests/test_fuzz_core.py runs the same cases,
fewer of them.

What is kept out, on purpose (it is not bad input, it is a valid order to do something big):
- positive integers above 5 and digit strings in commands and on the running show: a valid
  `numflies=10**6` or `incr nb=10**6` spawns that many flies (see docs/reliability.md);
- +inf and floats above 0.5 on the running show: `graceful_timeout=inf` with a stop signal
  the fly ignores means "wait for ever", as asked;
- commands other than the ones in SAFE_CMDS, and log paths outside a temp dir: the fuzzer
  runs as root. `quit` is left out (it stops the trainer, which is what it is for).
The stopped show gets every value, unbounded: its options are stored, never acted on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    import circus  # noqa: F401
except ImportError:  # not installed in this interpreter: use the work tree
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from circus import OptionError, Trainer
from circus._commands import ALIASES, COMMANDS, CommandError, run_command
from circus._options import OPTIONS, defaults

HANG = 10.0  # seconds a single call may take before it counts as a hang
SLEEP = "sleep 1000"
SAFE_CMDS = (SLEEP, "true", "false", "/nonexistent/bin/x", "sleep", "sleep x")
FILE_KEYS = ("stdout_file", "stderr_file", "working_dir")
PROPS = (
    "name",
    "match",
    "nb",
    "graceful",
    "keys",
    "options",
    "signum",
    "pid",
    "wid",
    "children",
    "recursive",
    "process",
    "lines",
    "stream",
    "start",
    "cmd",
    "args",
)
NAMES = ("fz", "fz_stopped", "nope", "f*", "*", "", "a b", "ü")
WORDS = (
    "3",
    "-1",
    "1.5",
    " 2 ",
    "²",
    "٣",
    "0x10",
    "1e3",
    "inf",
    "nan",
    "-inf",
    "TERM",
    "SIGKILL",
    "kill",
    "SIGSTOP",
    "CONT",
    "HUP",
    "true",
    "off",
    "yes",
    "root",
    "nobody",
    "nogroup",
    "glob",
    "simple",
    "stdout",
    "stderr",
    "$WID",
    "'",
    '"',
    "\x00",
    "\udcff",
)

# --- strategies ---------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Nd", "No", "Nl")), max_size=12)
_small_int = st.integers(-3, 5)
_any_int = st.one_of(_small_int, st.sampled_from([2**31, 2**63, -(2**64), 10**30, 65534, 0]))
_floats = st.one_of(st.floats(-1.0, 0.5), st.sampled_from([float("nan"), float("-inf"), -0.0]))
_any_float = st.floats(allow_nan=True, allow_infinity=True)


def _values(ints: st.SearchStrategy[int], floats: st.SearchStrategy[float]) -> Any:
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        ints,
        floats,
        _text,
        st.sampled_from(WORDS),
        st.binary(max_size=4),
        st.sampled_from(list(signal.Signals)[:5]),
    )
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner, inner),
        st.dictionaries(st.one_of(_text, st.sampled_from(list(OPTIONS))), inner, max_size=3),
    ), max_leaves=6)  # fmt: skip


SAFE_VALUES = _values(_small_int, _floats)
ANY_VALUES = _values(_any_int, _any_float)


def sanitize(value: Any, key: str | None = None, tmp: str = "/tmp") -> Any:
    """Keep what could run or write something for real inside the sandbox (see the doc)."""
    if isinstance(value, dict):
        return {k: sanitize(v, k if isinstance(k, str) else None, tmp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(sanitize(v, key, tmp) for v in value)
    if isinstance(value, str):
        if key == "cmd":
            return SAFE_CMDS[len(value) % len(SAFE_CMDS)]
        if key in FILE_KEYS:
            return os.path.join(tmp, "fz-$WID.log") if value else value
        if re.fullmatch(r"\s*[+-]?\d+\s*", value) and int(value) > 5:  # e.g. "٣" is 3: fine
            return "5"
    return value


def _near_valid(full: bool) -> dict[str, Any]:
    """Per option: values that are valid, or nearly (right type, edge of the range)."""
    count = st.integers() if full else st.integers(-2, 5)
    num = _any_float if full else st.floats(-0.5, 0.5)
    flag = st.one_of(st.booleans(), st.sampled_from(["true", "OFF", " yes ", "2", "", "nan"]))
    user = st.sampled_from(
        [0, 65534, -1, 99999, "root", "nobody", "nosuchuser", "٣", "²", "", "0", " 0"]
    )
    group = st.sampled_from([0, 65534, -1, 99999, "root", "nogroup", "nosuchgroup", "٣", "²"])
    path = st.sampled_from(["/tmp/fz-$WID.log", "", "/nonexistent/dir/x.log"])
    text_list = st.one_of(_text, st.lists(_text, max_size=3))
    return {
        "cmd": st.one_of(st.sampled_from([*SAFE_CMDS, "", "  ", "'unclosed", "a\x00b"]), _text),
        "args": st.one_of(text_list, st.sampled_from(["'unclosed", "-n 1"])),
        "numflies": count, "times": count, "max_retry": count, "max_bytes": count,
        "backup_count": count, "output_lines": count, "output_bytes": count,
        "warmup_delay": num, "within": num, "retry_in": num, "graceful_timeout": num,
        "working_dir": st.one_of(path, st.sampled_from(["/tmp", "~"])), "shell": flag,
        "copy_env": flag, "echo": flag, "send_hup": flag, "stopped": flag, "uid": user,
        "gid": group,
        "env": st.one_of(st.dictionaries(_text, _text, max_size=3),
                         st.sampled_from([{"A=B": "x"}, {"": "x"}, {"A": 1}])),
        "stop_signal": st.one_of(st.integers(-2, 70), st.sampled_from(WORDS)),
        "prereload_fn": st.sampled_from([None, len, "print", 0]),
        "stdout_file": path, "stderr_file": path,
    }  # fmt: skip


def option_cases(full: bool) -> Any:
    junk = ANY_VALUES if full else SAFE_VALUES
    near = _near_valid(full)
    return st.sampled_from(sorted(OPTIONS)).flatmap(
        lambda key: st.tuples(st.just(key), st.one_of(near[key], junk))
    )


def command_cases() -> Any:
    name = st.one_of(
        st.sampled_from(sorted(set(COMMANDS) - {"quit"}) + sorted(ALIASES)),
        _text,
        st.none(),
        _small_int,
        st.lists(_text, max_size=2),
    )
    key = st.one_of(st.sampled_from(PROPS), _text)
    special = {
        "name": st.one_of(st.sampled_from(NAMES), SAFE_VALUES),
        "options": st.one_of(st.dictionaries(
            st.one_of(st.sampled_from([*OPTIONS, "numprocesses"]), _text), SAFE_VALUES,
            max_size=4), SAFE_VALUES),
        "keys": st.one_of(st.lists(st.one_of(st.sampled_from([*OPTIONS, "numprocesses"]), _text),
                                   max_size=3), SAFE_VALUES),
    }  # fmt: skip
    pairs = key.flatmap(lambda k: st.tuples(st.just(k), special.get(k, SAFE_VALUES)))
    props = st.one_of(st.lists(pairs, max_size=5).map(dict), SAFE_VALUES)
    return st.tuples(name, props)


# --- checks -------------------------------------------------------------------------------


def _words(obj: Any, out: set[str]) -> set[str]:
    out.add(repr(obj)[:40])
    if isinstance(obj, dict):
        for k, v in obj.items():
            _words(k, out)
            _words(v, out)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _words(v, out)
    else:
        out.add(str(obj))
    return out


def names_something(message: str, *about: Any) -> bool:
    """A clear error names what was wrong: a key, a value, or some quoted name."""
    if not message.strip():
        return False
    words = {w for a in about for w in _words(a, set()) if w.strip()}
    return any(w in message for w in words) or re.search(r"'[^']+'", message) is not None


def call(trainer: Trainer, coro: Any) -> Any:
    """Run a loop-side coroutine (what the public method runs) with a hang deadline."""
    assert trainer.loop is not None
    future = asyncio.run_coroutine_threadsafe(coro, trainer.loop)
    try:
        return future.result(HANG)
    except TimeoutError:
        future.cancel()
        state = {
            s.name: (
                s.state.value,
                len(s),
                s.last_error,
                {k: v for k, v in s.options().items() if v != OPTIONS[k].default},
            )
            for s in trainer.shows
        }
        raise AssertionError(f"hang: no answer within {HANG} s; shows: {state}") from None


class Fuzz:
    """A trainer with a running show `fz` (1 sleeping fly) and a stopped show `fz_stopped`."""

    BASE = {**defaults(), "cmd": SLEEP, "numflies": 1, "graceful_timeout": 0.3,
            "stop_signal": signal.SIGTERM,
            "args": (), "shell": False, "working_dir": None, "uid": None, "gid": None,
            "env": None, "copy_env": True, "warmup_delay": 0.0, "stdout_file": None,
            "stderr_file": None, "send_hup": False, "times": 100, "within": 1.0,
            "retry_in": 0.05, "max_retry": -1}  # fmt: skip

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="circus-fuzz-")
        self.trainer = Trainer(check_delay=0.5)
        self.trainer.start(background=True)
        self.counts = {"ok": 0, "rejected": 0}
        self.stopped_base: dict[str, Any] = {}
        self.reset()
        self.stopped_base = self.trainer.get_show("fz_stopped").options()

    def close(self) -> None:
        try:
            self.trainer.stop(graceful=False)
        finally:
            self.tmp.cleanup()

    def reset(self) -> None:
        t = self.trainer
        for show in t.shows:
            if show.name not in ("fz", "fz_stopped"):
                t.rm_show(show.name, graceful=False)
        names = {s.name for s in t.shows}
        if "fz_stopped" in names and t.get_show("fz_stopped").options() != self.stopped_base:
            t.rm_show("fz_stopped", graceful=False)  # it took any value: start afresh
            names.discard("fz_stopped")
        if "fz" not in names:
            t.add_show("fz", SLEEP, **{k: v for k, v in self.BASE.items() if k != "cmd"})
        if "fz_stopped" not in names:
            t.add_show("fz_stopped", SLEEP, stopped=True)
        fz = t.get_show("fz")
        if any(fz.get_opt(k) != v for k, v in self.BASE.items()):
            fz.set_opts(self.BASE)
        if fz.state.value != "active":
            fz.start()
        stopped = t.get_show("fz_stopped")
        if stopped.state.value != "stopped":
            stopped.stop(graceful=False)

    def set_opt(self, show_name: str, key: str, value: Any) -> None:
        show = self.trainer.get_show(show_name)
        if show_name == "fz":
            value = sanitize(value, key, self.tmp.name)
        try:
            action = call(self.trainer, show._set_opt(key, value))
        except OptionError as exc:
            assert key in str(exc), f"set_opt({key!r}, {value!r}): {exc} does not name {key!r}"
            self.counts["rejected"] += 1
        else:
            assert action in (0, 1, 2)
            self.counts["ok"] += 1
        finally:
            if show_name == "fz":
                self.reset()

    def command(self, name: Any, props: Any) -> None:
        props = sanitize(props, None, self.tmp.name)
        try:
            answer = call(self.trainer, run_command(self.trainer, name, props))
        except CommandError as exc:
            # errno 5: the command is fine but this trainer can't do it (reloadconfig)
            clear = (exc.errno == 5 and str(exc).strip()) or names_something(str(exc), name, props)
            assert clear, f"command({name!r}, {props!r}): unclear error {exc!r}"
            assert isinstance(exc.errno, int)
            self.counts["rejected"] += 1
        else:
            assert isinstance(answer, dict), answer
            self.counts["ok"] += 1
        finally:
            self.reset()

    def check_alive(self) -> float:
        """The loop still answers, and a SIGKILLed fly comes back; returns the respawn time."""
        t = self.trainer
        assert set(t.statuses()) >= {"fz", "fz_stopped"}
        fz = t.get_show("fz")
        deadline = time.monotonic() + 5
        while len(fz) != 1:
            assert time.monotonic() < deadline, "fz never got its fly back"
            time.sleep(0.005)
        old = fz.flies[0].pid
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        while not (len(fz) == 1 and fz.flies[0].pid != old):
            assert time.monotonic() < t0 + 5, "no respawn after the fuzzing"
            time.sleep(0.001)
        return time.monotonic() - t0


def run(fuzz: Fuzz, cases: int, derandomize: bool = True) -> dict[str, Any]:
    """`cases` examples of each of the three families; returns counts and timings.

    The tests use the same examples every run (`derandomize`); the soak draws new ones."""
    conf = settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    figures: dict[str, Any] = {}

    def timed(label: str, test: Callable[[], None]) -> None:
        fuzz.counts = {"ok": 0, "rejected": 0}
        t0 = time.monotonic()
        test()
        figures[label] = {"cases": cases, **fuzz.counts, "s": round(time.monotonic() - t0, 2)}

    @conf
    @given(option_cases(full=True))
    def stopped_show(case: tuple[str, Any]) -> None:
        fuzz.set_opt("fz_stopped", *case)

    @conf
    @given(option_cases(full=False))
    def running_show(case: tuple[str, Any]) -> None:
        fuzz.set_opt("fz", *case)

    @conf
    @given(command_cases())
    def commands(case: tuple[Any, Any]) -> None:
        fuzz.command(*case)

    timed("set_opt, stopped show (every value)", stopped_show)
    timed("set_opt, running show", running_show)
    timed("Trainer.command", commands)
    figures["respawn_after_s"] = round(fuzz.check_alive(), 4)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="examples per family")
    args = parser.parse_args(argv)
    fuzz = Fuzz()
    try:
        figures = run(fuzz, args.cases, derandomize=False)
    finally:
        fuzz.close()
    for label, value in figures.items():
        print(f"{label}: {value}")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
