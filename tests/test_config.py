"""INI config files: our dialect, Circus 0.19's, includes, env, and errors that say where."""

from __future__ import annotations

import signal
import textwrap

import pytest

from circus.config import ConfigError, load_config


def ini(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def test_our_dialect_every_option(tmp_path):
    config = load_config(ini(f"""
        [circus]
        endpoint = ipc://{tmp_path}/s/ctl.sock
        pubsub_endpoint = ipc://{tmp_path}/s/pub.sock
        check_delay = 0.5
        insecure = yes

        [show:web]
        cmd = python -m http.server
        args = --bind 127.0.0.1 "a b"
        numflies = 3
        warmup_delay = 0.1
        working_dir = {tmp_path}
        shell = false
        uid = root
        gid = 0
        env = A=1, B=two
        send_hup = true
        times = 3
        within = 2.5
        retry_in = 1
        max_retry = -1
        graceful_timeout = 4
        stop_signal = INT
        stdout_file = {tmp_path}/out-$WID.log
        stderr_file = {tmp_path}/err.log
        max_bytes = 1000
        backup_count = 2
    """))
    assert config.endpoint == f"ipc://{tmp_path}/s/ctl.sock"
    assert config.check_delay == 0.5 and config.insecure is True
    [(name, opts)] = config.shows
    assert name == "web"
    assert opts["args"] == ("--bind", "127.0.0.1", "a b")
    assert opts["numflies"] == 3 and opts["uid"] == 0 and opts["gid"] == 0
    assert opts["env"] == {"A": "1", "B": "two"}
    assert opts["stop_signal"] == signal.SIGINT and opts["max_retry"] == -1
    assert opts["stdout_file"].endswith("out-$WID.log")
    assert config.warnings == []


def test_circus_019_config_maps_onto_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEEP_FOR", "30")
    path = tmp_path / "circus.ini"
    path.write_text(ini("""
        [circus]
        check_delay = 5
        endpoint = tcp://127.0.0.1:5555
        pubsub_endpoint = tcp://127.0.0.1:5556
        stats_endpoint = tcp://127.0.0.1:5557

        [watcher:sleeper]
        cmd = sleep $(circus.env.SLEEP_FOR) --wid $(circus.wid)
        numprocesses = 2
        autostart = false
        flapping_window = 3
        stdout_stream.class = FileStream
        stdout_stream.filename = /tmp/sleeper.log
        stdout_stream.max_bytes = 1024
        use_sockets = true
        priority = 3

        [socket:web]
        host = 127.0.0.1

        [env:sleeper]
        PATH = $PATH:/opt/bin
    """))
    config = load_config(path)
    [(name, opts)] = config.shows
    assert name == "sleeper"
    assert opts["cmd"] == "sleep 30 --wid $WID"
    assert opts["numflies"] == 2 and opts["stopped"] is True and opts["within"] == 3.0
    assert opts["stdout_file"] == "/tmp/sleeper.log" and opts["max_bytes"] == 1024
    assert opts["env"]["PATH"].endswith(":/opt/bin") and "$PATH" not in opts["env"]["PATH"]
    text = "\n".join(config.warnings)
    assert "stats_endpoint" in text and "use_sockets, priority" in text and "[socket:web]" in text
    assert str(path) in text


def test_include_and_env_sections(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.ini").write_text("[show:a]\ncmd = sleep 1\n")
    (tmp_path / "conf.d" / "b.ini").write_text("[show:b]\ncmd = sleep 2\nnumflies = 0\n")
    main = tmp_path / "main.ini"
    main.write_text(ini("""
        [circus]
        include = conf.d/*.ini

        [env:a,b]
        X = 1

        [env:b*]
        Y = 2
    """))
    config = load_config(main)
    shows = dict(config.shows)
    assert list(shows) == ["a", "b"]
    assert shows["a"]["env"] == {"X": "1"} and shows["b"]["env"] == {"X": "1", "Y": "2"}
    assert len(config.files) == 3


@pytest.mark.parametrize("text, where, problem", [
    ("[show:a]\ncmd = x\nnumflies = many\n", "[show:a] numflies", "an integer >= 0"),
    ("[show:a]\ncmd = x\nnumflys = 2\n", "[show:a] numflys", "valid options: args,"),
    ("[show:a]\nnumflies = 2\n", "[show:a]", "option cmd is missing"),
    ("[show:a b]\ncmd = x\n", "[show:a b]", "is not valid"),
    ("[circus]\ncheck_delay = -1\n", "[circus] check_delay", "a number > 0"),
    ("[circus]\nendpointt = x\n", "[circus] endpointt", "valid settings: authorized_keys"),
    ("[show:a]\ncmd = x\nuid = no-such-user-here\n", "[show:a] uid", "no such user"),
    ("[show:a]\ncmd = x\nstop_signal = SIGNOPE\n", "[show:a] stop_signal", "signal"),
    ("[show:a]\ncmd = $(circus.env.NO_SUCH_VAR_X)\n", "[show:a] cmd", "NO_SUCH_VAR_X"),
    ("[show:a]\ncmd = 'unclosed\n", "[show:a] cmd", "shlex"),
    ("[programs]\nx = 1\n", "[programs]", "unknown section"),
    ("[show:a]\ncmd = x\n[show:a]\ncmd = y\n", "[show:a]", "defined twice"),
    ("[show:a]\ncmd = x\ncmd = y\n", "[show:a] cmd", "set twice"),
    ("[circus]\ninclude = nope.ini\n", "[circus] include", "does not exist"),
])
def test_bad_config_names_file_section_option(tmp_path, text, where, problem):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert where in message and problem in message, message


def test_text_block_and_path_are_told_apart(tmp_path):
    assert load_config("[show:x]\ncmd = sleep 1\n").shows == [("x", {"cmd": "sleep 1"})]
    with pytest.raises(ConfigError, match="<text>: \\[show:x\\] numflies"):
        load_config("[show:x]\ncmd = sleep 1\nnumflies = -3\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.ini"))


def test_include_cycle_is_read_once(tmp_path):
    (tmp_path / "a.ini").write_text("[circus]\ninclude = b.ini\n[show:a]\ncmd = x\n")
    (tmp_path / "b.ini").write_text("[circus]\ninclude = a.ini\n[show:b]\ncmd = y\n")
    assert load_config(tmp_path / "a.ini").show_names() == ["a", "b"]
