"""The explicit list of commands a trainer answers, local or remote.

The notebook models, the ZeroMQ controller and `circusctl` all go through `run_command`, so
there is exactly one place that turns a command name and its properties into a call. Only the
names in COMMANDS are dispatched (a generic dispatch over RPC let Supervisor's clients run
shell commands: CVE-2017-11610). Circus 0.19's names and property names are aliases.

Every command runs on the trainer's loop and returns a JSON-serialisable dict.
"""

from __future__ import annotations

import fnmatch
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._options import OPTIONS, parse_signal
from .errors import CircusError, OptionError, UnknownShowError

if TYPE_CHECKING:
    from .show import Show
    from .trainer import Trainer

Handler = Callable[..., Awaitable[dict[str, Any]]]


class CommandError(CircusError, ValueError):
    """A command with bad properties; `errno` follows Circus 0.19's numbers."""

    def __init__(self, reason: str, errno: int = 6) -> None:
        super().__init__(reason)
        self.errno = errno


def fly_state(fly: Any) -> dict[str, Any]:
    return {
        "wid": fly.wid, "pid": fly.pid, "state": fly.state.value, "started": fly.started,
        "age": fly.age(), "returncode": fly.returncode,
    }  # fmt: skip


def show_state(show: Show) -> dict[str, Any]:
    from .show import _jsonable

    return {
        "name": show.name, "state": show.state.value, "numflies": show.numflies,
        "running": len(show), "restarts": show.restarts, "retries": show.retries,
        "last_error": show.last_error, "options": _jsonable(show.options()),
        "flies": [fly_state(f) for f in show.flies],
    }  # fmt: skip


def snapshot(trainer: Trainer) -> dict[str, Any]:
    """The whole state in one dict: what a model needs to start from before events flow."""
    return {
        "time": time.time(), "running": trainer.running,
        "shows": {s.name: show_state(s) for s in trainer.shows},
    }  # fmt: skip


def _name(props: dict[str, Any]) -> str:
    name = props.get("name")
    if not isinstance(name, str) or not name:
        raise CommandError(f"property 'name' must be a show name, not {name!r}")
    return name


def _show(trainer: Trainer, props: dict[str, Any]) -> Show:
    try:
        return trainer.get_show(_name(props))
    except UnknownShowError as exc:
        raise CommandError(str(exc), errno=3) from None


def _shows(trainer: Trainer, props: dict[str, Any]) -> list[Show]:
    """The shows a start/stop/restart addresses: all, one name, or a glob with match=glob."""
    name = props.get("name")
    if name is None:
        return list(trainer.shows)
    if props.get("match", "simple") == "glob":
        found = [s for s in trainer.shows if fnmatch.fnmatchcase(s.name, str(name))]
        if not found:
            raise CommandError(f"no show matches {name!r}", errno=3)
        return found
    return [_show(trainer, props)]


def _int(props: dict[str, Any], key: str, default: int) -> int:
    value = props.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CommandError(f"property {key!r} must be an integer, not {value!r}")
    return value


async def c_list(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    if props.get("name") is None:
        names = sorted(s.name for s in trainer.shows)
        return {"shows": names, "watchers": names}
    show = _show(trainer, props)
    return {"pids": [f.pid for f in show.flies], "wids": [f.wid for f in show.flies]}


async def c_status(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    if props.get("name") is None:
        return {"statuses": trainer.statuses()}
    show = _show(trainer, props)
    return {"status": show.status()}  # Circus 0.19 puts the state itself in "status"


async def c_numshows(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    return {"numshows": trainer.numshows(), "numwatchers": trainer.numshows()}


async def c_numflies(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    if props.get("name") is None:
        n = trainer.numflies()
        return {"numflies": n, "numprocesses": n}
    show = _show(trainer, props)
    return {"numflies": len(show), "numprocesses": len(show), "watcher_name": show.name}


async def c_incr(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    n = await show._scale(_int(props, "nb", 1))
    return {"numflies": n, "numprocesses": n}


async def c_decr(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    n = await show._scale(-_int(props, "nb", 1))
    return {"numflies": n, "numprocesses": n}


async def c_start(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    for show in _shows(trainer, props):
        await show._start()
    return {}


async def c_stop(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    graceful = bool(props.get("graceful", True))
    for show in _shows(trainer, props):
        await show._stop(graceful)
    return {}


async def c_restart(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    for show in _shows(trainer, props):
        await show._restart()
    return {}


async def c_reload(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    graceful = bool(props.get("graceful", True))
    if props.get("name") is None:
        await trainer._reload(graceful)
    else:
        await _show(trainer, props)._reload(graceful)
    return {}


async def c_options(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    return {"options": show_state(_show(trainer, props))["options"]}


async def c_get(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    keys = props.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CommandError(f"property 'keys' must be a list of option names, not {keys!r}")
    options = show_state(show)["options"]
    aliases = {"numprocesses": "numflies"}
    try:
        return {"options": {k: options[aliases.get(k, k)] for k in keys}}
    except KeyError as exc:
        raise CommandError(
            f"unknown option {exc.args[0]!r}; valid options: {', '.join(sorted(OPTIONS))}"
        ) from None


async def c_set(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    options = props.get("options")
    if not isinstance(options, dict) or not options:
        raise CommandError(f"property 'options' must be a non-empty object, not {options!r}")
    aliases = {"numprocesses": "numflies"}
    options = {aliases.get(k, k): v for k, v in options.items()}
    if "prereload_fn" in options:
        raise CommandError("option 'prereload_fn' can't be set remotely")
    await show._set_opts(options)
    return {}


async def c_signal(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    sig = parse_signal("signum", props.get("signum", signal.SIGTERM))
    pid, wid = props.get("pid"), props.get("wid")
    flies = show.flies
    if pid is not None:
        flies = tuple(f for f in flies if f.pid == pid)
        if not flies:
            raise CommandError(f"show {show.name!r} has no fly with pid {pid!r}", errno=3)
    if wid is not None:
        flies = tuple(f for f in flies if f.wid == wid)
        if not flies:
            raise CommandError(f"show {show.name!r} has no fly with wid {wid!r}", errno=3)
    for fly in flies:
        if props.get("children") or props.get("recursive"):
            fly.send_signal_children(sig)
        if not props.get("children"):
            fly.send_signal(sig)
    return {}


async def c_kill(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    await _show(trainer, props)._kill_flies(graceful=False)
    return {}


async def c_stats(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    def fly_stats(fly: Any) -> dict[str, Any]:
        info = dict(fly.info())
        info.setdefault("pid", fly.pid)
        info["wid"], info["started"], info["age"] = fly.wid, fly.started, fly.age()
        # Circus 0.19 gives each child as a dict of the same fields (its circusctl prints them).
        info["children"] = [dict(c) for c in info.get("children", [])]
        return info

    if props.get("name") is None:
        return {"infos": {s.name: {str(f.pid): fly_stats(f) for f in s.flies}
                          for s in trainer.shows}}
    show = _show(trainer, props)
    pid = props.get("process", props.get("pid"))
    flies = [f for f in show.flies if pid is None or f.pid == pid]
    if pid is not None and not flies:
        raise CommandError(f"show {show.name!r} has no fly with pid {pid!r}", errno=3)
    if pid is not None:
        return {"name": show.name, "process": pid, "info": fly_stats(flies[0])}
    return {"name": show.name, "info": {str(f.pid): fly_stats(f) for f in flies}}


async def c_dstats(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    import os

    import psutil

    from .fly import _process_info

    me = psutil.Process(os.getpid())
    info = _process_info(me)  # the fields Circus 0.19's circusctl prints
    info["children"] = [_process_info(c) for c in me.children()]
    return {"info": info}


async def c_globaloptions(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    bound: dict[str, str] = {}  # what the controller really bound (tcp port 0 -> a port)
    for plugin in trainer.plugins:
        bound.update(getattr(plugin, "bound", None) or {})
    return {"options": {"endpoint": bound.get("endpoint", trainer.endpoint),
                        "pubsub_endpoint": bound.get("pubsub_endpoint", trainer.pubsub_endpoint),
                        "check_delay": trainer.check_delay, "stats_endpoint": None,
                        "multicast_endpoint": None}}


async def c_addshow(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    name = _name(props)
    options = dict(props.get("options") or {})
    if "args" in props:
        options["args"] = props["args"]
    if "numprocesses" in options:
        options["numflies"] = options.pop("numprocesses")
    unknown = (set(options) - set(OPTIONS)) | ({"prereload_fn", "cmd"} & set(options))
    if unknown:
        raise CommandError(f"unknown option(s) {sorted(unknown)}; valid: {sorted(OPTIONS)}")
    if name in {s.name for s in trainer.shows}:
        raise CommandError(f"a show named {name!r} already exists", errno=3)
    options["stopped"] = not props.get("start", True)
    cmd = props.get("cmd")  # a missing or bad cmd gets the Show's own error
    show = trainer.show_class(name, cmd, **options)  # type: ignore[arg-type]
    await trainer._add_show(show)
    return {}


async def c_rmshow(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    await trainer._rm_show(show.name, bool(props.get("graceful", True)))
    return {}


async def c_snapshot(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot": snapshot(trainer)}


async def c_logs(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    show = _show(trainer, props)
    n = _int(props, "lines", 50)
    stream = props.get("stream", "stdout")
    if stream not in ("stdout", "stderr"):
        raise CommandError(f"property 'stream' must be 'stdout' or 'stderr', not {stream!r}")
    wid = props.get("wid")
    flies = [f for f in show.flies if wid is None or f.wid == wid]
    return {"logs": {str(f.wid): f.output[stream].lines(n) for f in flies}}


async def c_reloadconfig(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    reload_config = getattr(trainer, "reload_config", None)
    if reload_config is None:
        raise CommandError("this trainer has no config file to reload (circusd has)", errno=5)
    return dict(await reload_config() or {})


async def c_listsockets(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    return {"sockets": []}  # circus has no shared sockets ([socket:NAME] is not supported)


async def c_quit(trainer: Trainer, props: dict[str, Any]) -> dict[str, Any]:
    trainer._begin_stop(graceful=bool(props.get("graceful", True)))
    return {}


COMMANDS: dict[str, Handler] = {
    "list": c_list, "status": c_status, "numshows": c_numshows, "numflies": c_numflies,
    "incr": c_incr, "decr": c_decr, "start": c_start, "stop": c_stop, "restart": c_restart,
    "reload": c_reload, "options": c_options, "get": c_get, "set": c_set,
    "signal": c_signal, "kill": c_kill, "stats": c_stats, "dstats": c_dstats,
    "globaloptions": c_globaloptions, "addshow": c_addshow, "rmshow": c_rmshow,
    "snapshot": c_snapshot, "logs": c_logs, "quit": c_quit, "reloadconfig": c_reloadconfig,
    "listsockets": c_listsockets,
}  # fmt: skip

# Circus 0.19's names for the same commands.
ALIASES = {
    "numwatchers": "numshows", "numprocesses": "numflies", "add": "addshow", "rm": "rmshow",
}  # fmt: skip


async def run_command(trainer: Trainer, name: Any, props: Any = None) -> dict[str, Any]:
    """Run command `name` on the loop. Raises CommandError (with errno) on bad input."""
    if not isinstance(name, str):
        raise CommandError(f"command must be a string, not {name!r}", errno=6)
    handler = COMMANDS.get(ALIASES.get(name, name))
    if handler is None:
        valid = ", ".join(sorted(COMMANDS) + sorted(ALIASES))
        raise CommandError(f"unknown command {name!r}; valid commands: {valid}", errno=2)
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise CommandError(f"properties must be an object, not {props!r}", errno=6)
    try:
        return await handler(trainer, props)
    except CommandError:
        raise
    except (OptionError, KeyError, ValueError, TypeError) as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise CommandError(str(text), errno=3 if isinstance(exc, KeyError) else 6) from None
