"""Fly output: drained so writers never block, decoded safely, kept bounded, logged."""

from __future__ import annotations

import hashlib

from circus._output import OutputBuffer, RotatingFile
from helpers import py, wait_for


def test_ten_megabytes_reach_the_log_exactly(trainer, tmp_path):
    log = tmp_path / "out.log"
    code = ("import sys, hashlib\n"
            "block = bytes(range(256)) * 4096\n"  # 1 MiB, every byte value
            "h = hashlib.sha256()\n"
            "for i in range(10):\n"
            "    sys.stdout.buffer.write(block); h.update(block)\n"
            "sys.stdout.flush()\n"
            "sys.stderr.write(h.hexdigest()); sys.stderr.flush()\n"
            "import time; time.sleep(1000)\n")  # no exit, so no respawn writing more
    show = trainer.add_show("big", py(code), stdout_file=str(log), numflies=1)
    fly = show.flies[0]
    # The digest comes after the last write: the writer was never blocked on a full pipe.
    expected = wait_for(lambda: fly.output["stderr"].text(), timeout=20, what="the digest")
    wait_for(lambda: log.stat().st_size == 10 << 20, what="all bytes in the file")
    assert hashlib.sha256(log.read_bytes()).hexdigest() == expected
    assert fly.output["stdout"].total_bytes == 10 << 20
    show.stop()


def test_split_and_invalid_utf8_from_a_real_process(trainer):
    code = ("import os, time\n"
            "os.write(1, 'caf'.encode() + b'\\xc3'); time.sleep(0.05)\n"
            "os.write(1, b'\\xa9 ok\\n'); time.sleep(0.05)\n"
            "os.write(1, b'bad \\xff\\xfe bytes\\n')\n"
            "os.write(1, 'tail without newline \\u20ac'.encode())\n")
    show = trainer.add_show("u8", py(code), times=100)
    fly = show.flies[0]
    wait_for(lambda: fly.returncode is not None, what="exit")
    wait_for(lambda: fly.output["stdout"].lines(n=1) == ["tail without newline \u20ac"],
             what="the partial last line")
    show.stop()
    assert fly.output["stdout"].lines() == [
        "caf\u00e9 ok", "bad \ufffd\ufffd bytes", "tail without newline \u20ac"]


def test_buffer_decodes_split_characters_and_survives_garbage():
    buf = OutputBuffer()
    snowman = "\u2603".encode()
    for byte in snowman:  # one byte a read
        buf.feed(bytes([byte]))
    buf.feed(b"\n\xff\xc3\n")
    assert buf.lines() == ["\u2603", "\ufffd\ufffd"]
    buf.feed(b"\xe2\x82")  # an unfinished euro sign at EOF
    buf.close()
    assert buf.lines()[-1] == "\ufffd"


def test_buffer_caps_lines_and_characters():
    buf = OutputBuffer(max_lines=3, max_chars=12)
    buf.feed(b"".join(b"line%d\n" % i for i in range(100)))
    assert buf.lines() == ["line98", "line99"]  # 3 lines would be 18 characters
    buf = OutputBuffer(max_lines=3, max_chars=1000)
    buf.feed(b"a\nb\nc\nd\ne")
    assert buf.lines() == ["c", "d", "e"]
    assert buf.lines(2) == ["d", "e"]
    assert buf.text() == "b\nc\nd\ne"


def test_rotating_file(tmp_path):
    path = tmp_path / "r.log"
    log = RotatingFile(str(path), max_bytes=100, backup_count=2)
    for _ in range(10):
        log.write(b"x" * 40 + b"\n")
    log.close()
    assert path.stat().st_size <= 100
    assert (tmp_path / "r.log.1").exists() and (tmp_path / "r.log.2").exists()
    assert not (tmp_path / "r.log.3").exists()


def test_per_fly_log_files_with_wid(trainer, tmp_path):
    show = trainer.add_show("w", py("import os, time; print('hi', os.environ['CIRCUS_WID']); "
                                    "time.sleep(1000)"),
                            numflies=2, stdout_file=str(tmp_path / "w-$WID.log"))
    wait_for(lambda: (tmp_path / "w-1.log").exists() and (tmp_path / "w-2.log").exists()
             and (tmp_path / "w-2.log").read_text() == "hi 2\n", what="two logs")
    show.stop()
    assert (tmp_path / "w-1.log").read_text() == "hi 1\n"


def test_nothing_reaches_the_hosts_stdout(trainer, capfd):
    show = trainer.add_show("q", py("import sys, time; print('to-stdout'); "
                                    "print('to-stderr', file=sys.stderr); time.sleep(1000)"))
    fly = show.flies[0]  # it stays: a fly that exits at once may be gone before we look
    wait_for(lambda: fly.output["stderr"].lines() and fly.output["stdout"].lines(), what="both")
    show.stop()
    out, err = capfd.readouterr()
    assert "to-stdout" not in out + err and "to-stderr" not in out + err
    assert fly.output["stdout"].lines() == ["to-stdout"]


def test_echo_copies_output_to_the_host_when_asked(trainer, capfd):
    show = trainer.add_show("e", py("import sys, time; print('hello-out'); "
                                    "print('hello-err', file=sys.stderr); time.sleep(1000)"),
                            echo=True)
    fly = show.flies[0]
    wait_for(lambda: fly.output["stderr"].lines() and fly.output["stdout"].lines(), what="both")
    show.stop()
    out, err = capfd.readouterr()
    assert "hello-out" in out and "hello-err" in err
