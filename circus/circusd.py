"""circusd: run the shows of a config file in the foreground, controlled over ZeroMQ.

    circusd CONFIG.ini [--log-output FILE|-] [--log-level LEVEL] [--pidfile FILE]
    circusd --gen-keys DIR

SIGTERM and SIGINT stop every fly gracefully (a second one: at once), SIGHUP reloads the
config file (shows added, removed and updated to match it; the `reloadconfig` command does the
same). A bad config is reported with its file, section and option, and nothing starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from ._keys import KeyFileError, gen_keys
from .config import Config, ConfigError, load_config
from .errors import CircusError
from .trainer import Trainer

log = logging.getLogger("circus.circusd")

# Show events worth a line in the daemon's log (output is not).
_LOGGED = {"spawn": logging.INFO, "reap": logging.INFO, "kill": logging.DEBUG,
           "flapping": logging.WARNING, "spawn_error": logging.ERROR, "stop": logging.INFO,
           "start": logging.INFO, "reload": logging.INFO, "updated": logging.INFO}


def _setup_logging(output: str | None, level: str) -> None:
    handler: logging.Handler
    if output in (None, "", "-", "stderr"):
        handler = logging.StreamHandler(sys.stderr)
    elif output == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(output, encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s circusd[%(process)d] [%(levelname)s] %(message)s"))
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)


def _log_event(topic: str, payload: dict[str, Any]) -> None:
    event = topic.rpartition(".")[2]
    level = _LOGGED.get(event)
    if level is None:
        return
    show = payload.get("show", "?")
    detail = {k: v for k, v in payload.items() if k not in ("show", "time")}
    log.log(level, "show %s: %s %s", show, event,
            " ".join(f"{k}={v}" for k, v in detail.items()))


def write_pidfile(path: str) -> None:
    try:
        with open(path, encoding="ascii") as f:
            old = int(f.read().strip() or 0)
    except (OSError, ValueError):
        old = 0
    if old and old != os.getpid():
        try:
            os.kill(old, 0)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise CircusError(f"pidfile {path!r}: process {old} is running") from None
        else:
            raise CircusError(f"pidfile {path!r}: circusd (pid {old}) is already running")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    try:
        with open(path, encoding="ascii") as f:
            if int(f.read().strip() or 0) != os.getpid():
                return
        os.unlink(path)
    except (OSError, ValueError):
        pass


def build_trainer(config: Config) -> Trainer:
    """A Trainer for `config` (not started), with its controller if endpoints are set."""
    trainer = Trainer(endpoint=config.endpoint, pubsub_endpoint=config.pubsub_endpoint,
                      check_delay=config.check_delay)
    for name, options in config.shows:
        opts = dict(options)
        trainer._adopt(trainer.show_class(name, opts.pop("cmd"), **opts))
    if config.endpoint or config.pubsub_endpoint:
        from ._controller import Controller

        keys = config.server_keys()
        for address in (config.endpoint, config.pubsub_endpoint):
            if address and address.startswith("tcp://") and keys is None and not config.insecure:
                raise ConfigError(
                    f"{config.path}: [circus] endpoint: {address} is tcp:// without CurveZMQ "
                    "keys: set keys_dir (or server_secret_key and authorized_keys; "
                    "`circusd --gen-keys DIR` makes them), or insecure = true"
                )
        trainer.plugins.append(Controller(keys=keys, insecure=config.insecure))
    return trainer


class Daemon:
    """A trainer plugin: SIGHUP (and the `reloadconfig` command) reload the config file."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    async def start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._lock = asyncio.Lock()
        trainer.reload_config = self.reload  # type: ignore[attr-defined]
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_hup)

    async def stop(self, trainer: Trainer) -> None:
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        except (RuntimeError, ValueError):
            pass

    def _on_hup(self) -> None:
        log.info("SIGHUP: reloading %s", self.config.path)
        task = asyncio.ensure_future(self._reload_logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:
            log.error("reload failed, still running the previous config: %s", exc)

    async def reload(self) -> dict[str, Any]:
        """Make the running shows match the config file again."""
        from ._commands import CommandError
        from ._options import defaults

        assert self._lock is not None and self.config.path is not None
        async with self._lock:
            try:
                new = load_config(self.config.path)
            except ConfigError as exc:
                raise CommandError(str(exc), errno=5) from None
            for warning in new.warnings:
                log.warning("%s", warning)
            for key in ("endpoint", "pubsub_endpoint", "insecure"):
                if getattr(new, key) != getattr(self.config, key):
                    log.warning("reload: [circus] %s changed; restart circusd to apply it", key)
            trainer = self.trainer
            wanted = dict(new.shows)
            running = {s.name: s for s in trainer.shows}
            removed = [n for n in running if n not in wanted]
            added = [n for n in wanted if n not in running]
            updated = []
            for name in removed:
                await trainer._rm_show(name)
            for name in added:
                opts = dict(wanted[name])
                await trainer._add_show(trainer.show_class(name, opts.pop("cmd"), **opts))
            for name, options in wanted.items():
                if name not in running:
                    continue
                show = running[name]
                target = {**defaults(), **options}
                target.pop("prereload_fn", None)
                target.pop("stopped", None)
                changed = {k: v for k, v in target.items() if show.options().get(k) != v}
                if changed:
                    updated.append(name)
                    await show._set_opts(changed)
            self.config = new
            for plugin in trainer.plugins:
                if hasattr(plugin, "reload_keys"):
                    plugin.reload_keys()
            log.info("reloaded: added %s, removed %s, updated %s", added or "none",
                     removed or "none", updated or "none")
            return {"added": added, "removed": removed, "updated": updated}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="circusd", description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="the INI config file")
    parser.add_argument("--gen-keys", metavar="DIR",
                        help="write CurveZMQ key pairs (server and client) into DIR and exit")
    parser.add_argument("--log-output", metavar="FILE", help="log file, or - for stderr")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--pidfile", metavar="FILE", help="write circusd's pid here")
    args = parser.parse_args(argv)
    if args.gen_keys:
        try:
            paths = gen_keys(args.gen_keys)
        except OSError as exc:
            print(f"circusd: cannot write keys into {args.gen_keys!r}: {exc}", file=sys.stderr)
            return 1
        for key, path in paths.items():
            print(f"{key} = {path}")
        return 0
    if not args.config:
        parser.error("a config file is needed (or --gen-keys DIR)")
    try:
        config = load_config(args.config)
        if config.loglevel.upper() not in logging.getLevelNamesMapping():
            raise ConfigError(f"{config.path}: [circus] loglevel: {config.loglevel!r} is not "
                              "valid: use DEBUG, INFO, WARNING or ERROR")
        trainer = build_trainer(config)
    except (ConfigError, KeyFileError, CircusError, ValueError) as exc:
        print(f"circusd: {exc}", file=sys.stderr)
        return 2
    _setup_logging(args.log_output or config.logoutput, args.log_level or config.loglevel)
    for warning in config.warnings:
        log.warning("%s", warning)
    for address in (config.endpoint, config.pubsub_endpoint):
        if address and address.startswith("tcp://") and config.server_keys() is None:
            log.warning("%s has NO authentication (insecure = true): anyone who can reach it "
                        "can run any command as %s", address, _user())
    if not (config.endpoint or config.pubsub_endpoint):
        log.warning("no endpoint in [circus]: this circusd can't be controlled (stop it with "
                    "SIGTERM)")
    pidfile = args.pidfile or config.pidfile
    if pidfile:
        try:
            write_pidfile(pidfile)
        except (CircusError, OSError) as exc:
            log.error("%s", exc)
            return 1
    trainer.plugins.insert(0, Daemon(config))
    trainer.subscribe("show.", _log_event)
    log.info("starting %d show(s) from %s", len(config.shows), config.path)
    try:
        trainer.start(background=False)
    except CircusError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if pidfile:
            remove_pidfile(pidfile)
    log.info("stopped")
    return 0


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


if __name__ == "__main__":
    sys.exit(main())
