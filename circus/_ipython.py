"""The IPython extension: `%load_ext circus` registers `%circus` and `%%circus`.

One default Trainer per kernel (`circus._ipython.default_trainer()`, also returned by a bare
`%circus`) is created on the first `%circus start`; its loop runs on a daemon thread, so the
kernel never waits for it. `%unload_ext circus` stops every fly; interpreter exit does too.

`%circus connect ENDPOINT` attaches to a circusd (`circus.connect`) and returns its dashboard;
several connections coexist, by name (`--name`, else the endpoint). `%circus connections`
lists them, `%circus disconnect NAME` closes one, unloading the extension closes them all.

Mistakes (unknown show or subcommand, bad number) raise UsageError: IPython prints one line.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ._commands import CommandError
from .errors import CircusError
from .trainer import Trainer, _default_name

if TYPE_CHECKING:
    from .remote import RemoteTrainer

_DEFAULT: Trainer | None = None
_REMOTES: dict[str, RemoteTrainer] = {}  # connection name -> remote, in connection order

SUBCOMMANDS = ("start", "stop", "restart", "reload", "scale", "incr", "decr", "status",
               "signal", "logs", "dashboard", "rm", "connect", "connections", "disconnect")

# Options of `%circus start`; every other word is part of the command.
_START_OPTS = {"--name": 1, "--numflies": 1, "-n": 1, "--warmup-delay": 1, "--env": 1,
               "--cwd": 1, "--shell": 0, "--stopped": 0}


def default_trainer(create: bool = False) -> Trainer | None:
    """The kernel's default Trainer (started), made on first use when `create`."""
    global _DEFAULT
    if _DEFAULT is None and create:
        _DEFAULT = Trainer()
        _DEFAULT.start(background=True)
    elif _DEFAULT is not None and create and not _DEFAULT.running:
        _DEFAULT.start(background=True)
    return _DEFAULT


def stop_default() -> None:
    """Stop every fly of the default trainer and forget it."""
    global _DEFAULT
    trainer, _DEFAULT = _DEFAULT, None
    if trainer is not None:
        trainer.stop()
    try:
        import circus_widgets

        circus_widgets.close_all()
    except ImportError:
        pass


def connections() -> dict[str, RemoteTrainer]:
    """The remote trainers of `%circus connect`, by name (a copy)."""
    return dict(_REMOTES)


def disconnect(name: str) -> None:
    """Close the connection `name` (a name or an endpoint) and its dashboards."""
    found = name if name in _REMOTES else next(
        (n for n, r in _REMOTES.items() if r.endpoint == name), None)
    if found is None:
        raise UsageError(f"%circus disconnect: no connection named {name!r}; "
                         f"connections: {', '.join(_REMOTES) or 'none'}")
    _close_remote(_REMOTES.pop(found))


def disconnect_all() -> None:
    """Close every connection of `%circus connect`."""
    while _REMOTES:
        _close_remote(_REMOTES.pop(next(iter(_REMOTES))))


def _close_remote(remote: RemoteTrainer) -> None:
    try:
        from circus_widgets._dashboard import close_dashboards
    except ImportError:
        pass
    else:
        close_dashboards(remote)  # their models unsubscribe before the remote goes
    remote.close()


def split_start(words: list[str]) -> tuple[list[str], list[str]]:
    """Split `start`'s words into (our option words, the command's words).

    Our options may come before or after the command; `--` ends them, so a command that
    has an option of the same name can still be given: `start --numflies 2 -- prog --name x`.
    """
    opts: list[str] = []
    cmd: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            cmd.extend(words[i + 1:])
            break
        key = word.split("=", 1)[0]
        if key in _START_OPTS and not (cmd and cmd[-1] == "--"):
            if "=" in word or _START_OPTS[key] == 0:
                opts.append(word)
            else:
                if i + 1 >= len(words):
                    raise UsageError(f"%circus start: option {word} needs a value")
                opts.extend(words[i:i + 2])
                i += 1
        else:
            cmd.append(word)
        i += 1
    return opts, cmd


def _parser(prog: str) -> magic_arguments.MagicArgumentParser:
    return magic_arguments.MagicArgumentParser(prog=f"%circus {prog}", add_help=False)


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{what} must be an integer, not {text!r}") from None


@magics_class
class CircusMagics(Magics):
    """`%circus SUBCOMMAND ...` and `%%circus` (INI [show:NAME] sections)."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("subcommand", nargs="?", help=(
        "start CMD [--name N] [--numflies N] [--warmup-delay S] [--env K=V]... [--cwd DIR] "
        "[--shell] | start NAME | stop [NAME | --all] | restart NAME | reload NAME | "
        "scale NAME N | incr NAME [N] | decr NAME [N] | status | signal NAME SIG [--wid W] | "
        "logs NAME [--wid W] [-n 50] [--stderr] | dashboard [NAME] | rm NAME | "
        "connect ENDPOINT [--name N] [--keys DIR] [--timeout S] | connections | "
        "disconnect NAME. Without a subcommand: the default Trainer."))
    @magic_arguments.argument("args", nargs="*", help="the subcommand's arguments")
    @line_magic
    def circus(self, line: str = "") -> Any:
        """Run circus shows from the notebook. See the subcommands below."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%circus: cannot parse the line: {exc}") from None
        if not words:
            return default_trainer(create=True)
        sub, args = words[0], words[1:]
        if sub in ("-h", "--help", "help"):
            raise UsageError(f"%circus subcommands: {', '.join(SUBCOMMANDS)} (see %circus?)")
        handler = getattr(self, f"_do_{sub}", None)
        if sub not in SUBCOMMANDS or handler is None:
            raise UsageError(f"%circus: unknown subcommand {sub!r}; "
                             f"valid: {', '.join(SUBCOMMANDS)}")
        try:
            return handler(args)
        except (CommandError, CircusError, KeyError, ValueError, TypeError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise UsageError(f"%circus {sub}: {text}") from None

    @cell_magic("circus")  # type: ignore[arg-type]  # IPython's stubs don't type named magics
    def circus_cell(self, line: str, cell: str) -> Any:
        """Add (and start) the shows of INI `[show:NAME]` sections; `%%circus --stopped`
        adds them stopped."""
        try:
            shows = _load_ini(cell)
        except (ValueError, CircusError) as exc:
            raise UsageError(f"%%circus: {exc}") from None
        stopped = "--stopped" in shlex.split(line)
        trainer = default_trainer(create=True)
        assert trainer is not None
        names = []
        for name, options in shows:
            options = dict(options)
            cmd = options.pop("cmd", None)
            if cmd is None:
                raise UsageError(f"%%circus: section [show:{name}] needs a cmd")
            if stopped:
                options["stopped"] = True
            try:
                trainer.add_show(name, cmd, **options)
            except (CircusError, ValueError, TypeError) as exc:
                raise UsageError(f"%%circus: [show:{name}]: {exc}") from None
            names.append(name)
        print(f"added show(s): {', '.join(names)}")

    # --- subcommands -----------------------------------------------------------------------

    def _trainer(self) -> Trainer:
        trainer = default_trainer()
        if trainer is None:
            raise UsageError("%circus: nothing runs yet; start a show with %circus start CMD")
        return trainer

    def _do_start(self, args: list[str]) -> Any:
        trainer = default_trainer(create=True)
        assert trainer is not None
        if len(args) == 1 and args[0] in {s.name for s in trainer.shows}:
            trainer.command("start", name=args[0])
            return None
        opt_words, cmd_words = split_start(args)
        parser = _parser("start")
        parser.add_argument("--name")
        parser.add_argument("--numflies", "-n", default="1")
        parser.add_argument("--warmup-delay", default="0")
        parser.add_argument("--env", action="append", default=[])
        parser.add_argument("--cwd")
        parser.add_argument("--shell", action="store_true")
        parser.add_argument("--stopped", action="store_true")
        opts = parser.parse_args(opt_words)
        if not cmd_words:
            raise UsageError("%circus start: give a command, e.g. %circus start python w.py")
        cmd = " ".join(cmd_words) if opts.shell else shlex.join(cmd_words)
        env = {}
        for item in opts.env:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise UsageError(f"%circus start: --env wants KEY=VALUE, not {item!r}")
            env[key] = value
        name = opts.name or _default_name(cmd)
        if name in {s.name for s in trainer.shows}:
            raise UsageError(f"%circus start: a show named {name!r} already exists; "
                             "pick another with --name")
        try:
            warmup = float(opts.warmup_delay)
        except ValueError:
            raise UsageError(f"--warmup-delay must be a number, not {opts.warmup_delay!r}"
                             ) from None
        show = trainer.add_show(
            name, cmd, numflies=_int(opts.numflies, "--numflies"), warmup_delay=warmup,
            env=env or None, working_dir=opts.cwd, shell=opts.shell, stopped=opts.stopped,
        )  # fmt: skip
        print(f"show {name!r}: {show.numflies} fly(ies) of {cmd!r}")
        if show.last_error:  # e.g. no such program: say so now, not only in %circus status
            print(f"  {show.state}: {show.last_error}")
        return None

    def _one_name(self, args: list[str], sub: str, usage: str) -> str:
        if len(args) != 1:
            raise UsageError(f"usage: %circus {sub} {usage}")
        return args[0]

    def _do_stop(self, args: list[str]) -> None:
        trainer = self._trainer()
        if not args or args == ["--all"]:
            trainer.command("stop")
        else:
            trainer.command("stop", name=self._one_name(args, "stop", "[NAME | --all]"))

    def _do_restart(self, args: list[str]) -> None:
        self._trainer().command("restart", name=self._one_name(args, "restart", "NAME"))

    def _do_reload(self, args: list[str]) -> None:
        self._trainer().command("reload", name=self._one_name(args, "reload", "NAME"))

    def _do_rm(self, args: list[str]) -> None:
        self._trainer().command("rmshow", name=self._one_name(args, "rm", "NAME"))

    def _do_scale(self, args: list[str]) -> None:
        if len(args) != 2:
            raise UsageError("usage: %circus scale NAME N")
        n = _int(args[1], "N")
        if n < 0:
            raise UsageError(f"%circus scale: N must be >= 0, not {n}")
        self._trainer().command("set", name=args[0], options={"numflies": n})

    def _scale_by(self, args: list[str], sub: str) -> int:
        if len(args) not in (1, 2):
            raise UsageError(f"usage: %circus {sub} NAME [N]")
        nb = _int(args[1], "N") if len(args) == 2 else 1
        return int(self._trainer().command(sub, name=args[0], nb=nb)["numflies"])

    def _do_incr(self, args: list[str]) -> None:
        print(f"{args[0] if args else ''}: {self._scale_by(args, 'incr')} fly(ies)")

    def _do_decr(self, args: list[str]) -> None:
        print(f"{args[0] if args else ''}: {self._scale_by(args, 'decr')} fly(ies)")

    def _do_signal(self, args: list[str]) -> None:
        parser = _parser("signal")
        parser.add_argument("name")
        parser.add_argument("signum")
        parser.add_argument("--wid")
        opts = parser.parse_args(args)
        props: dict[str, Any] = {"name": opts.name, "signum": opts.signum}
        if opts.wid is not None:
            props["wid"] = _int(opts.wid, "--wid")
        self._trainer().command("signal", **props)

    def _do_logs(self, args: list[str]) -> None:
        parser = _parser("logs")
        parser.add_argument("name")
        parser.add_argument("--wid")
        parser.add_argument("-n", "--lines", default="50")
        parser.add_argument("--stderr", action="store_true")
        opts = parser.parse_args(args)
        props: dict[str, Any] = {"name": opts.name, "lines": _int(opts.lines, "-n"),
                                 "stream": "stderr" if opts.stderr else "stdout"}
        if opts.wid is not None:
            props["wid"] = _int(opts.wid, "--wid")
        logs = self._trainer().command("logs", **props)["logs"]
        for wid, lines in logs.items():
            for line in lines:
                print(f"[{wid}] {line}")

    def _do_status(self, args: list[str]) -> None:
        if args:
            raise UsageError("usage: %circus status")
        print(status_table(self._trainer()))

    def _do_dashboard(self, args: list[str]) -> None:
        if len(args) > 1:
            raise UsageError("usage: %circus dashboard [NAME]")
        trainer = self._trainer()
        name = args[0] if args else None
        if name is not None:
            trainer.get_show(name)
        from IPython.display import display

        import circus_widgets

        display(circus_widgets.dashboard(trainer, name))

    def _do_connect(self, args: list[str]) -> Any:
        parser = _parser("connect")
        parser.add_argument("endpoint")
        parser.add_argument("--name")
        parser.add_argument("--keys")
        parser.add_argument("--timeout", default="5")
        opts = parser.parse_args(args)
        try:
            timeout = float(opts.timeout)
        except ValueError:
            raise UsageError(f"--timeout must be a number, not {opts.timeout!r}") from None
        if not timeout > 0:
            raise UsageError(f"--timeout must be > 0, not {opts.timeout!r}")
        name = opts.name or opts.endpoint
        import circus_widgets

        known = _REMOTES.get(name)
        if known is not None:
            if known.endpoint != opts.endpoint:
                raise UsageError(f"%circus connect: {name!r} is already connected to "
                                 f"{known.endpoint}; %circus disconnect {name} first, or "
                                 "pick another --name")
            return circus_widgets.dashboard(known)
        from .remote import connect

        remote = connect(opts.endpoint, keys=opts.keys, timeout=timeout, name=name)
        try:
            board = circus_widgets.dashboard(remote)
        except BaseException:
            remote.close()
            raise
        _REMOTES[name] = remote
        return board

    def _do_connections(self, args: list[str]) -> None:
        if args:
            raise UsageError("usage: %circus connections")
        print(connections_table())

    def _do_disconnect(self, args: list[str]) -> None:
        if args == ["--all"]:
            disconnect_all()
        else:
            disconnect(self._one_name(args, "disconnect", "NAME | --all"))


def connections_table() -> str:
    """Name, endpoint and connection state of each `%circus connect`."""
    if not _REMOTES:
        return "no connections"
    rows = [("name", "endpoint", "state")]
    rows += [(n, r.endpoint, r.connection_state) for n, r in _REMOTES.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


_SAMPLER: Any = None


def status_table(trainer: Trainer) -> str:
    """Shows, states, flies, pids, cpu % and RSS as a text table."""
    global _SAMPLER
    from .models import PsutilSampler

    if _SAMPLER is None:
        _SAMPLER = PsutilSampler()
    snap = trainer.snapshot()
    pids = [f["pid"] for s in snap["shows"].values() for f in s["flies"]]
    stats = _SAMPLER.sample(pids)
    rows = [("show", "state", "flies", "wid", "pid", "fly state", "cpu %", "RSS MiB")]
    for name, show in snap["shows"].items():
        rows.append((name, show["state"], f"{show['running']}/{show['numflies']}", "", "", "",
                     "", ""))
        for f in show["flies"]:
            got = stats.get(f["pid"], {"cpu": 0.0, "rss": 0.0})
            rows.append(("", "", "", str(f["wid"]), str(f["pid"]), f["state"],
                         f"{got['cpu']:.1f}", f"{got['rss'] / (1 << 20):.1f}"))
    if len(rows) == 1:
        return "no shows"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip()
                      for r in rows)
    errors = [f"{name}: {show['last_error']}" for name, show in snap["shows"].items()
              if show["last_error"] and show["state"] != "active"]
    return "\n".join([table, *errors])


def _load_ini(text: str) -> list[tuple[str, dict[str, Any]]]:
    from .config import load_config

    config = load_config(text if "\n" in text else text + "\n")
    for warning in config.warnings:
        print(f"warning: {warning}")
    return list(config.shows)


def _complete(shell: Any, event: Any) -> list[str]:
    """Tab completion: subcommands, then show names."""
    words = event.line.split()
    completing_first = len(words) == 1 or (len(words) == 2 and not event.line.endswith(" "))
    if completing_first:
        return list(SUBCOMMANDS)
    if words[1] == "disconnect":
        return [*_REMOTES, "--all"]
    trainer = default_trainer()
    names = [s.name for s in trainer.shows] if trainer is not None else []
    if words[1] == "stop":
        names.append("--all")
    return names


_LOADED: set[int] = set()


def load_ipython_extension(ip: Any) -> None:
    ip.register_magics(CircusMagics)
    ip.set_hook("complete_command", _complete, str_key="%circus")
    _LOADED.add(id(ip))


def unload_ipython_extension(ip: Any) -> None:
    """Stop every fly of the default trainer, close every connection, remove the magics."""
    disconnect_all()
    stop_default()
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("circus", None)
    _LOADED.discard(id(ip))

__all__ = ["CircusMagics", "connections", "default_trainer", "disconnect", "disconnect_all",
           "load_ipython_extension", "stop_default", "unload_ipython_extension"]
