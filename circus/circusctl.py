"""circusctl: send one command to a circusd, or follow its events.

    circusctl [--endpoint E] [--timeout T] [--json] [--keys DIR] COMMAND [ARGS...]
    circusctl --config circus.ini status
    circusctl listen [TOPIC ...]

Readable output by default, the daemon's reply as JSON with --json (one object per line for
`listen`). Exit status: 0 ok, 1 the command failed, 2 usage, 3 no reply from the daemon.
The endpoint comes from --endpoint, CIRCUSCTL_ENDPOINT or --config's [circus] endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

USAGE = """commands:
  list [NAME]                 shows, or the pids of one show's flies
  status [NAME]               state of every show, or of one
  numshows | numflies [NAME]  counts
  incr NAME [N] | decr NAME [N]
  start [NAME] | stop [NAME] | restart [NAME] | reload [NAME] | kill NAME
  options NAME | get NAME KEY... | set NAME KEY VALUE [KEY VALUE ...]
  signal NAME SIGNAL [--pid PID | --wid WID] [--children]
  stats [NAME [PID]] | dstats | globaloptions | snapshot
  addshow NAME CMD [--stopped] [KEY=VALUE ...] | rmshow NAME
  logs NAME [--lines N] [--stream stdout|stderr]
  reloadconfig | quit
  listen [TOPIC ...]          follow events (topics are prefixes, e.g. show.web.)
Circus 0.19 names work too: numwatchers, numprocesses, add, rm."""


class Usage(Exception):
    pass


def _value(text: str) -> Any:
    """A command-line value: JSON if it parses (3, true, {"A": "1"}), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _need(args: list[str], n: int, what: str) -> None:
    if len(args) < n:
        raise Usage(f"missing {what}")


def build(command: str, args: list[str]) -> tuple[str, dict[str, Any]]:
    """The wire command and properties for `circusctl COMMAND ARGS`."""
    name = {"numwatchers": "numshows", "numprocesses": "numflies", "add": "addshow",
            "rm": "rmshow"}.get(command, command)
    props: dict[str, Any] = {}
    flags = _flags(args)
    if name in ("list", "status", "numflies", "start", "stop", "restart", "reload", "stats"):
        if args:
            props["name"] = args[0]
        if name == "stats" and len(args) > 1:
            props["process"] = int(args[1])
        if name in ("start", "stop", "restart") and args and any(c in args[0] for c in "*?["):
            props["match"] = "glob"
    elif name in ("incr", "decr"):
        _need(args, 1, "show name")
        props["name"] = args[0]
        if len(args) > 1:
            props["nb"] = int(args[1])
    elif name in ("options", "kill", "rmshow"):
        _need(args, 1, "show name")
        props["name"] = args[0]
    elif name == "get":
        _need(args, 2, "show name and option names")
        props.update(name=args[0], keys=args[1:])
    elif name == "set":
        _need(args, 3, "show name, option and value")
        if len(args) % 2 != 1:
            raise Usage("set needs KEY VALUE pairs")
        pairs = zip(args[1::2], args[2::2], strict=True)
        props.update(name=args[0], options={k: _value(v) for k, v in pairs})
    elif name == "signal":
        _need(args, 2, "show name and signal")
        props.update(name=args[0], signum=args[1])
        for key in ("pid", "wid"):
            if key in flags:
                props[key] = int(flags[key])
        if "children" in flags:
            props["children"] = True
    elif name == "addshow":
        _need(args, 2, "show name and command")
        options = {}
        for item in args[2:]:
            key, sep, val = item.partition("=")
            if not sep:
                raise Usage(f"{item!r} is not KEY=VALUE")
            options[key] = _value(val)
        props.update(name=args[0], cmd=args[1], start="stopped" not in flags, options=options)
    elif name == "logs":
        _need(args, 1, "show name")
        props["name"] = args[0]
        if "lines" in flags:
            props["lines"] = int(flags["lines"])
        if "stream" in flags:
            props["stream"] = flags["stream"]
    elif args:
        props["args"] = args  # let the daemon say what is wrong
    return name, props


def _flags(args: list[str]) -> dict[str, str]:
    """Take --key VALUE / --flag out of args (in place)."""
    flags: dict[str, str] = {}
    rest = []
    it = iter(args)
    for arg in it:
        if arg.startswith("--") and len(arg) > 2:
            key = arg[2:]
            if key in ("pid", "wid", "lines", "stream"):
                flags[key] = next(it, "")
            else:
                flags[key] = ""
        else:
            rest.append(arg)
    args[:] = rest
    return flags


def _table(mapping: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {_text(v)}" for k, v in mapping.items())


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "" if value is None else str(value)


def render(name: str, result: dict[str, Any]) -> str:
    """A readable form of a command's result."""
    if name == "list":
        return "\n".join(map(str, result.get("shows", result.get("pids", []))))
    if name == "status":
        if "statuses" in result:
            return _table(dict(sorted(result["statuses"].items())))
        return str(result.get("status"))
    if name in ("numshows", "numflies"):
        return str(result.get(name))
    if name in ("incr", "decr"):
        return str(result.get("numflies", "ok"))
    if name in ("options", "get", "globaloptions"):
        return _table(result.get("options", {}))
    if name == "stats":
        lines = []
        infos = result.get("infos") or {result.get("name", "?"): result.get("info", {})}
        if "process" in result:
            infos = {result.get("name", "?"): {str(result["process"]): result["info"]}}
        for show, flies in infos.items():
            lines.append(f"{show}:")
            for pid, info in flies.items():
                lines.append(f"  {pid}  wid {info.get('wid')}  cpu {info.get('cpu')}%  "
                             f"mem {info.get('mem_info1')}  age {float(info.get('age', 0)):.1f}s"
                             f"  {info.get('cmdline')}")
        return "\n".join(lines)
    if name == "dstats":
        return _table(result.get("info", {}))
    if name == "logs":
        return "\n".join(f"[{wid}] {line}" for wid, lines in result.get("logs", {}).items()
                         for line in lines)
    if name == "snapshot":
        return json.dumps(result.get("snapshot"), indent=2)
    return "ok" if not result else _table(result)


def _endpoints(opts: argparse.Namespace) -> tuple[str | None, str | None, Any]:
    endpoint = opts.endpoint or os.environ.get("CIRCUSCTL_ENDPOINT")
    pubsub = opts.pubsub_endpoint
    keys = None
    if opts.config:
        from .config import load_config

        config = load_config(opts.config)
        endpoint = endpoint or config.endpoint
        pubsub = pubsub or config.pubsub_endpoint
        if (endpoint or "").startswith("tcp://"):
            keys = config.client_keys()
    if opts.keys:
        from ._keys import keys_in

        keys = keys_in(os.path.expanduser(opts.keys))[1]
        if keys is None:
            raise Usage(f"no client keys in {opts.keys!r} (client.key_secret and server.key)")
    return endpoint, pubsub, keys


def listen(opts: argparse.Namespace, topics: list[str], endpoint: str | None,
           pubsub: str | None, keys: Any, out: Callable[[str], None]) -> int:
    import zmq

    from .client import Client
    from .remote import _reachable_pubsub

    if pubsub is None:
        if endpoint is None:
            raise Usage("listen needs --pubsub-endpoint or --endpoint")
        with Client(endpoint, opts.timeout, keys=keys) as client:
            pubsub = client.command("globaloptions")["options"].get("pubsub_endpoint")
        if not pubsub:
            print("circusctl: the daemon publishes no events", file=sys.stderr)
            return 1
        pubsub = _reachable_pubsub(endpoint, pubsub)
    ctx: zmq.Context[Any] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    if keys is not None:
        sub.curve_secretkey, sub.curve_publickey = keys.secret, keys.public
        sub.curve_serverkey = keys.server_public
    for topic in topics or ["show.", "trainer."]:
        sub.subscribe(topic.encode())
    sub.connect(pubsub)
    seen = 0
    try:
        while opts.count is None or seen < opts.count:
            if not sub.poll(200):
                continue
            frames = sub.recv_multipart()
            if len(frames) != 2:
                continue
            topic, data = frames[0].decode(errors="replace"), frames[1].decode(errors="replace")
            if opts.json:
                try:
                    out(json.dumps({"topic": topic, "data": json.loads(data)}))
                except ValueError:
                    continue
            else:
                out(f"{topic}: {data}")
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        sub.close(0)
        ctx.term()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="circusctl", description="Control a circusd.", epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint", "-e", help="the daemon's control endpoint")
    parser.add_argument("--pubsub-endpoint", help="the daemon's event endpoint (for listen)")
    parser.add_argument("--timeout", "-t", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    parser.add_argument("--keys", metavar="DIR", help="a `circusd --gen-keys` directory")
    parser.add_argument("--config", "-c", metavar="INI", help="take endpoint and keys from here")
    parser.add_argument("--count", type=int, help="listen: exit after this many events")
    parser.add_argument("command", help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        endpoint, pubsub, keys = _endpoints(opts)
        if opts.command == "listen":
            return listen(opts, opts.args, endpoint, pubsub, keys,
                          lambda line: print(line, flush=True))
        if endpoint is None:
            raise Usage("no endpoint: give --endpoint, --config or set CIRCUSCTL_ENDPOINT")
        name, props = build(opts.command, list(opts.args))
    except Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"circusctl: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"circusctl: {exc}", file=sys.stderr)
        return 2
    from .client import Client, UnreachableError

    try:
        with Client(endpoint, opts.timeout, keys=keys) as client:
            reply = client.call(name, **props)
    except UnreachableError as exc:
        print(f"circusctl: {exc}", file=sys.stderr)
        return 3
    if opts.json:
        print(json.dumps(reply, indent=None, sort_keys=True))
        return 1 if reply.get("status") == "error" else 0
    if reply.get("status") == "error":
        print(f"error: {reply.get('reason')}", file=sys.stderr)
        return 1
    result = {k: v for k, v in reply.items() if k not in ("id", "time", "status")}
    if reply.get("status") != "ok":
        result["status"] = reply.get("status")
    print(render(name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
