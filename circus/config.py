"""INI config files: the loader behind `circusd CONFIG.ini` and the notebook's `%%circus`.

    [circus]
    endpoint = ipc:///run/circus/ctl.sock
    pubsub_endpoint = ipc:///run/circus/pub.sock
    check_delay = 1
    include = more/*.ini

    [show:web]
    cmd = python -m http.server $(circus.env.PORT)
    numflies = 2

    [env:web]
    PYTHONUNBUFFERED = 1

Circus 0.19 files load too: `[watcher:NAME]` sections become shows, their option names
(numprocesses, stdout_stream.filename, flapping_window, ...) are mapped onto ours and the
ones we don't support are named in `Config.warnings`. Any other mistake raises ConfigError,
whose message names the file, the section, the option and what is wrong, before anything
starts. `load_config` takes a path or the text itself.
"""

from __future__ import annotations

import configparser
import fnmatch
import glob
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ._options import _FALSE, _TRUE, OPTIONS, validate
from .errors import CircusError, OptionError
from .show import check_name


class ConfigError(CircusError, ValueError):
    """A config file that can't be used; the message says where and why."""


#: [circus] settings we use, with their parsers, defaults and meaning.
CIRCUS_SETTINGS: dict[str, tuple[Any, str]] = {
    "endpoint": (None, "ROUTER for commands (ipc://PATH or tcp://HOST:PORT); none: no socket"),
    "pubsub_endpoint": (None, "PUB for events; none: no socket"),
    "check_delay": (1.0, "seconds between two checks of the fly counts"),
    "insecure": (False, "allow tcp:// without CurveZMQ (circusd logs a warning)"),
    "keys_dir": (None, "a `circusd --gen-keys` directory (server and client keys)"),
    "server_secret_key": (None, "the daemon's key pair (server.key_secret)"),
    "authorized_keys": (None, "directory of the client public keys the daemon lets in"),
    "client_secret_key": (None, "a client's key pair (for circusctl and circus.connect)"),
    "server_public_key": (None, "the daemon's public key (for circusctl and circus.connect)"),
    "pidfile": (None, "circusd writes its pid here"),
    "logoutput": (None, "circusd's log: a file path, or - for stderr"),
    "loglevel": ("INFO", "circusd's log level"),
    "include": (None, "more config files (space-separated, globs allowed)"),
    "include_dir": (None, "a directory whose *.ini files are included"),
}

# Circus 0.19 [circus] settings that mean nothing here: loaded with a warning.
_CIRCUS_IGNORED = {
    "stats_endpoint", "statsd", "stats_close_outputs", "multicast_endpoint", "httpd",
    "httpd_host", "httpd_port", "httpd_close_outputs", "debug", "debug_gc", "umask",
    "endpoint_owner", "warmup_delay", "fqdn_prefix", "papa_endpoint", "loggerconfig",
    "statsd_close_outputs", "use_papa",
}

# Circus 0.19 watcher options, as ours.
_WATCHER_RENAMES = {
    "numprocesses": "numflies", "flapping_attempts": "times", "flapping_window": "within",
    "flapping_retry_in": "retry_in", "flapping_max_retry": "max_retry",
    "stdout_stream.filename": "stdout_file", "stderr_stream.filename": "stderr_file",
    "stdout_stream.max_bytes": "max_bytes", "stderr_stream.max_bytes": "max_bytes",
    "stdout_stream.backup_count": "backup_count", "stderr_stream.backup_count": "backup_count",
}  # fmt: skip
# ... and the ones we take silently because they say what we do anyway.
_WATCHER_NOOP = {"stdout_stream.class", "stderr_stream.class", "check_flapping"}

_PATHS = {"keys_dir", "server_secret_key", "authorized_keys", "client_secret_key",
          "server_public_key", "pidfile", "logoutput"}
_SETTABLE = sorted(set(OPTIONS) - {"prereload_fn"})
_ENV_REF = re.compile(r"\$\(circus\.env\.([A-Za-z_][A-Za-z0-9_]*)\)", re.IGNORECASE)
_WID_REF = re.compile(r"\$\(circus\.wid\)", re.IGNORECASE)
_OTHER_REF = re.compile(r"\$\(circus\.[^)]*\)", re.IGNORECASE)


@dataclass
class Config:
    """What a config file says: [circus] settings, and the shows in file order."""

    path: str | None = None
    endpoint: str | None = None
    pubsub_endpoint: str | None = None
    check_delay: float = 1.0
    insecure: bool = False
    keys_dir: str | None = None
    server_secret_key: str | None = None
    authorized_keys: str | None = None
    client_secret_key: str | None = None
    server_public_key: str | None = None
    pidfile: str | None = None
    logoutput: str | None = None
    loglevel: str = "INFO"
    shows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def show_names(self) -> list[str]:
        return [name for name, _ in self.shows]

    def server_keys(self) -> Any:
        """The daemon's CurveZMQ keys (circus._keys.ServerKeys), or None if none are set."""
        from ._keys import keys_in, server_keys

        if self.server_secret_key or self.authorized_keys:
            if not (self.server_secret_key and self.authorized_keys):
                raise ConfigError(f"{self._where()}: server_secret_key and authorized_keys "
                                  "go together")
            return server_keys(self.server_secret_key, self.authorized_keys)
        return keys_in(self.keys_dir)[0] if self.keys_dir else None

    def client_keys(self) -> Any:
        """A client's CurveZMQ keys (circus._keys.ClientKeys), or None."""
        from ._keys import client_keys, keys_in

        if self.client_secret_key and self.server_public_key:
            return client_keys(self.client_secret_key, self.server_public_key)
        return keys_in(self.keys_dir)[1] if self.keys_dir else None

    def _where(self) -> str:
        return f"{self.path or '<text>'}: [circus]"


class _Reader:
    def __init__(self) -> None:
        # section -> option -> (value, file); sections keep the order they first appear in
        self.sections: dict[str, dict[str, tuple[str, str]]] = {}
        self.section_file: dict[str, str] = {}
        self.files: list[str] = []

    def read_text(self, text: str, origin: str, base: str, depth: int = 0) -> None:
        parser = configparser.ConfigParser(interpolation=None, strict=True,
                                           default_section="\x00none")
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # env names keep case
        try:
            parser.read_string(text, source=origin)
        except configparser.DuplicateSectionError as exc:
            raise ConfigError(f"{origin}: [{exc.section}]: section defined twice (line "
                              f"{exc.lineno})") from None
        except configparser.DuplicateOptionError as exc:
            raise ConfigError(f"{origin}: [{exc.section}] {exc.option}: option set twice "
                              f"(line {exc.lineno})") from None
        except configparser.Error as exc:
            raise ConfigError(f"{origin}: {_one_line(exc)}") from None
        for section in parser.sections():
            self.section_file.setdefault(section, origin)
            opts = self.sections.setdefault(section, {})
            for key, value in parser.items(section):
                opts[key] = (value, origin)
        circus = parser["circus"] if parser.has_section("circus") else {}
        includes: list[str] = []
        for pattern in (circus.get("include") or "").split():
            path = os.path.join(base, os.path.expanduser(pattern))
            found = sorted(glob.glob(path))
            if not found and not glob.has_magic(path):
                raise ConfigError(f"{origin}: [circus] include: file {path!r} does not exist")
            includes += found
        for folder in (circus.get("include_dir") or "").split():
            path = os.path.join(base, os.path.expanduser(folder))
            if not os.path.isdir(path):
                raise ConfigError(f"{origin}: [circus] include_dir: {path!r} is not a directory")
            includes += sorted(glob.glob(os.path.join(path, "*.ini")))
        for path in includes:
            self.read_file(path, depth + 1, included_from=origin)

    def read_file(self, path: str, depth: int = 0, included_from: str | None = None) -> None:
        path = os.path.abspath(path)
        if path in self.files:
            return  # included twice (or in a cycle): once is enough
        if depth > 10:
            raise ConfigError(f"{path}: includes nest more than 10 deep")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            where = f"{included_from}: [circus] include: " if included_from else ""
            raise ConfigError(f"{where}cannot read config file {path!r}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
        self.files.append(path)
        self.read_text(text, path, os.path.dirname(path), depth)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _expand(value: str, where: str, environ: dict[str, str]) -> str:
    def env(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"{where}: $(circus.env.{name}) but {name} is not in the "
                              "environment")
        return environ[name]

    value = _ENV_REF.sub(env, value)
    value = _WID_REF.sub("$WID", value)
    other = _OTHER_REF.search(value)
    if other:
        raise ConfigError(f"{where}: {other.group(0)} is not supported (only "
                          "$(circus.env.VAR) and $(circus.wid))")
    return value


def _parse_env(value: str, where: str) -> dict[str, str]:
    env = {}
    for item in re.split(r"[,\n]", value):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: {item!r} is not NAME=VALUE")
        env[key.strip()] = val.strip()
    return env


def _is_text(source: str) -> bool:
    return "\n" in source or source.lstrip().startswith("[")


def load_config(
    source: str | os.PathLike[str], *, environ: dict[str, str] | None = None,
    base_dir: str | None = None,
) -> Config:
    """Read a config file (a path) or a config text (anything with a newline or a '[')."""
    environ = dict(os.environ if environ is None else environ)
    reader = _Reader()
    if isinstance(source, str) and _is_text(source):
        reader.read_text(source, "<text>", base_dir or os.getcwd())
        path = None
    else:
        path = os.path.abspath(os.fspath(source))
        reader.read_file(path)
    config = Config(path=path, files=list(reader.files))
    _circus_section(config, reader, environ)
    envs = _env_sections(reader, environ)
    seen = set()
    for section, opts in reader.sections.items():
        kind, _, name = section.partition(":")
        origin = reader.section_file[section]
        if section == "circus" or kind == "env":
            continue
        if kind in ("show", "watcher") and name:
            if name in seen:
                raise ConfigError(f"{origin}: [{section}]: show {name!r} is defined twice")
            seen.add(name)
            config.shows.append(_show_section(config, kind, name, opts, envs, environ))
        elif kind in ("socket", "plugin"):
            config.warnings.append(f"{origin}: [{section}]: Circus {kind} sections are not "
                                   "supported; ignored")
        else:
            raise ConfigError(f"{origin}: [{section}]: unknown section; valid sections: "
                              "[circus], [show:NAME], [watcher:NAME], [env:NAME]")
    return config


def _circus_section(config: Config, reader: _Reader, environ: dict[str, str]) -> None:
    for key, (raw, origin) in reader.sections.get("circus", {}).items():
        where = f"{origin}: [circus] {key}"
        if key in _CIRCUS_IGNORED:
            config.warnings.append(f"{where}: Circus 0.19 setting not supported; ignored")
            continue
        if key not in CIRCUS_SETTINGS:
            raise ConfigError(f"{where}: unknown setting; valid settings: "
                              f"{', '.join(sorted(CIRCUS_SETTINGS))}")
        value = _expand(raw.strip(), where, environ)
        if key == "check_delay":
            try:
                config.check_delay = float(value)
            except ValueError:
                config.check_delay = -1.0
            if not config.check_delay > 0:
                raise ConfigError(f"{where}: {value!r} is not valid: it must be a number > 0")
        elif key == "insecure":
            if value.lower() not in _TRUE | _FALSE:
                raise ConfigError(f"{where}: {value!r} is not valid: it must be true or false")
            config.insecure = value.lower() in _TRUE
        elif key in ("include", "include_dir"):
            pass
        elif key in _PATHS and value and value != "-":
            base = os.path.dirname(origin) if origin != "<text>" else os.getcwd()
            setattr(config, key, os.path.join(base, os.path.expanduser(value)))
        else:
            setattr(config, key, value or None)


def _env_sections(
    reader: _Reader, environ: dict[str, str]
) -> list[tuple[list[str], dict[str, str]]]:
    """[env:a,b*] sections: (name patterns, variables); $VAR refers to the host environment."""
    out = []
    for section, opts in reader.sections.items():
        kind, _, names = section.partition(":")
        if kind != "env":
            continue
        patterns = [n.strip() for n in names.split(",") if n.strip()]
        if not patterns:
            raise ConfigError(f"{reader.section_file[section]}: [{section}]: name the show(s)")
        variables = {}
        for key, (raw, origin) in opts.items():
            value = _expand(raw, f"{origin}: [{section}] {key}", environ)
            variables[key] = re.sub(
                r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                lambda m: environ.get(m.group(1), m.group(0)) if m.group(1) != "WID"
                else m.group(0), value,
            )
        out.append((patterns, variables))
    return out


def _show_section(
    config: Config, kind: str, name: str, opts: dict[str, tuple[str, str]],
    envs: list[tuple[list[str], dict[str, str]]], environ: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    section = f"{kind}:{name}"
    try:
        check_name(name)
    except OptionError as exc:
        origin = next(iter(opts.values()))[1] if opts else "<config>"
        raise ConfigError(f"{origin}: [{section}]: {exc}") from None
    options: dict[str, Any] = {}
    unsupported = []
    for key, (raw, origin) in opts.items():
        where = f"{origin}: [{section}] {key}"
        target = key
        if kind == "watcher":
            if key in _WATCHER_NOOP:
                continue
            if key == "autostart":
                target = "stopped"
                raw = "false" if raw.strip().lower() in _TRUE else "true"
            else:
                target = _WATCHER_RENAMES.get(key, key)
            if target not in OPTIONS:
                unsupported.append(key)
                continue
        if target == "prereload_fn" or target not in OPTIONS:
            raise ConfigError(f"{where}: unknown option; valid options: {', '.join(_SETTABLE)}")
        value: Any = _expand(raw.strip() if target != "cmd" else raw.strip(), where, environ)
        if target == "env":
            value = _parse_env(value, where)
        elif target in ("working_dir", "stdout_file", "stderr_file", "uid", "gid") and not value:
            value = None
        try:
            options[target] = validate(target, value)
        except OptionError as exc:
            problem = str(exc).split(" is not valid: ", 1)[-1]
            raise ConfigError(f"{where}: {value!r} is not valid: {problem}") from None
    if unsupported:
        origin = next(iter(opts.values()))[1]
        config.warnings.append(f"{origin}: [{section}]: Circus 0.19 option(s) not supported, "
                               f"ignored: {', '.join(unsupported)}")
    if "cmd" not in options:
        origin = next(iter(opts.values()))[1] if opts else config.path or "<text>"
        raise ConfigError(f"{origin}: [{section}]: option cmd is missing (every show needs one)")
    for patterns, variables in envs:
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            options["env"] = {**(options.get("env") or {}), **variables}
    return name, options


__all__ = ["CIRCUS_SETTINGS", "Config", "ConfigError", "load_config"]
