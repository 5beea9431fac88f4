"""Show options: one table of names, defaults, validators and what a change needs.

`Show.set_opt` and the constructor both go through `validate`, so a value is checked the same
way whether it comes from Python, a magic, a config file or the control socket.
"""

from __future__ import annotations

import enum
import grp
import pwd
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import OptionError


class Action(enum.IntEnum):
    """What a Show must do after an option changed (the seed's `do_action` codes)."""

    NONE = 0
    RELOAD = 1
    MANAGE = 2


@dataclass(frozen=True)
class Option:
    default: Any
    check: Callable[[str, Any], Any]
    action: Action
    help: str


def _bad(name: str, value: Any, valid: str) -> OptionError:
    return OptionError(f"{name}={value!r} is not valid: {name} must be {valid}")


def _int(minimum: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        # isdecimal, not isdigit: "²" is a digit int() refuses (issue 6, found by fuzzing)
        if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _bad(name, value, f"an integer >= {minimum}")
        return value

    return check


def _float(minimum: float, strict: bool = False) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _bad(name, value, f"a number {'>' if strict else '>='} {minimum}") from None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or value != value or value < minimum or (strict and value == minimum):
            raise _bad(name, value, f"a number {'>' if strict else '>='} {minimum}")
        return float(value)

    return check


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(name, value, "true or false")


def _cmd(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, value, "a non-empty command line string")
    try:
        shlex.split(value)
    except ValueError as exc:
        raise _bad(name, value, f"a command line shlex can split ({exc})") from None
    return value


def _args(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise _bad(name, value, f"arguments shlex can split ({exc})") from None
    if isinstance(value, list | tuple) and all(isinstance(a, str) for a in value):
        return tuple(value)
    raise _bad(name, value, "a string or a list of strings")


def _opt_str(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str) and value:
        return value
    raise _bad(name, value, "a non-empty string or None")


def _env(name: str, value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict) and all(
        isinstance(k, str) and k and "=" not in k and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise _bad(name, value, "a dict of str to str (names without '=') or None")


def _user(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            pwd.getpwuid(value)
            return value
        if isinstance(value, str):
            return int(value) if value.isdecimal() else pwd.getpwnam(value).pw_uid  # not "²"
    # ValueError: a NUL in a name; OverflowError: getgrgid(2**63) (issue 6, found by fuzzing)
    except (KeyError, ValueError, OverflowError):
        raise OptionError(f"{name}={value!r} is not valid: no such user on this host") from None
    raise _bad(name, value, "a user name, a uid or None")


def _group(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            grp.getgrgid(value)
            return value
        if isinstance(value, str):
            return int(value) if value.isdecimal() else grp.getgrnam(value).gr_gid  # not "²"
    # ValueError: a NUL in a name; OverflowError: getgrgid(2**63) (issue 6, found by fuzzing)
    except (KeyError, ValueError, OverflowError):
        raise OptionError(f"{name}={value!r} is not valid: no such group on this host") from None
    raise _bad(name, value, "a group name, a gid or None")


def parse_signal(name: str, value: Any) -> signal.Signals:
    """Accept 15, "15", "TERM", "SIGTERM" or signal.SIGTERM."""
    try:
        if isinstance(value, signal.Signals):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return signal.Signals(value)
        if isinstance(value, str):
            text = value.strip().upper()
            if text.isdigit():
                return signal.Signals(int(text))
            return signal.Signals[text if text.startswith("SIG") else "SIG" + text]
    except (KeyError, ValueError):
        pass
    raise _bad(name, value, "a signal number or name such as 15, 'TERM' or 'SIGTERM'")


def _callable(name: str, value: Any) -> Callable[..., Any] | None:
    if value is None or callable(value):
        return value
    raise _bad(name, value, "a callable or None")


OPTIONS: dict[str, Option] = {
    "cmd": Option(None, _cmd, Action.RELOAD, "command line; $WID becomes the fly's wid"),
    "args": Option((), _args, Action.RELOAD, "extra arguments appended to cmd"),
    "numflies": Option(1, _int(0), Action.MANAGE, "how many flies to keep alive"),
    "warmup_delay": Option(0.0, _float(0), Action.NONE, "seconds between two spawns"),
    "working_dir": Option(None, _opt_str, Action.RELOAD, "cwd of the flies"),
    "shell": Option(False, _bool, Action.RELOAD, "run cmd through /bin/sh"),
    "uid": Option(None, _user, Action.RELOAD, "user to run the flies as"),
    "gid": Option(None, _group, Action.RELOAD, "group to run the flies as"),
    "env": Option(None, _env, Action.RELOAD, "environment variables for the flies"),
    "copy_env": Option(True, _bool, Action.RELOAD, "start from the host's environment"),
    "send_hup": Option(False, _bool, Action.NONE, "reload by sending SIGHUP"),
    "stopped": Option(False, _bool, Action.NONE, "do not start with the trainer"),
    "times": Option(2, _int(1), Action.NONE, "deaths that count as flapping ..."),
    "within": Option(1.0, _float(0, strict=True), Action.NONE, "... within this many seconds"),
    "retry_in": Option(7.0, _float(0), Action.NONE, "seconds to wait after flapping"),
    "max_retry": Option(5, _int(-1), Action.NONE, "flapping rounds before failing (-1: ever)"),
    "graceful_timeout": Option(30.0, _float(0), Action.NONE, "seconds before SIGKILL on stop"),
    "stop_signal": Option(signal.SIGTERM, parse_signal, Action.NONE, "signal that asks to stop"),
    "prereload_fn": Option(None, _callable, Action.NONE, "called with the show before reload"),
    "stdout_file": Option(None, _opt_str, Action.RELOAD, "append stdout here ($WID allowed)"),
    "stderr_file": Option(None, _opt_str, Action.RELOAD, "append stderr here ($WID allowed)"),
    "max_bytes": Option(0, _int(0), Action.NONE, "rotate log files at this size (0: never)"),
    "backup_count": Option(5, _int(0), Action.NONE, "rotated log files to keep"),
    "output_lines": Option(1000, _int(1), Action.NONE, "lines kept in memory per fly stream"),
    "output_bytes": Option(1 << 20, _int(1), Action.NONE, "bytes kept in memory per fly stream"),
    "echo": Option(False, _bool, Action.NONE, "also copy output to the host's stdout/stderr"),
}


def spec(name: str) -> Option:
    """The Option called `name`, or an OptionError listing the valid names."""
    found = OPTIONS.get(name)
    if found is None:
        raise OptionError(f"unknown option {name!r}; valid options: {', '.join(sorted(OPTIONS))}")
    return found


def validate(name: str, value: Any) -> Any:
    """The checked value of option `name`, or an OptionError naming what would be valid."""
    return spec(name).check(name, value)


def defaults() -> dict[str, Any]:
    return {name: spec.default for name, spec in OPTIONS.items()}

