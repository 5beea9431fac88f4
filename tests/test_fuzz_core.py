"""Fuzzing the core's two doors with hypothesis: `Show.set_opt` (every option, any value) and
`Trainer.command` (the table the ZeroMQ controller dispatches). No crash, no hang, every
rejection an OptionError/CommandError naming what was wrong, and the loop keeps running.
The cases are those of bench/fuzz_soak.py, which runs 10,000 of each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
fuzz_soak = pytest.importorskip("fuzz_soak")  # needs hypothesis

CASES = 300


def test_fuzz_set_opt_and_commands():
    fuzz = fuzz_soak.Fuzz()
    try:
        figures = fuzz_soak.run(fuzz, CASES)
    finally:
        fuzz.close()
    print(figures)
    for label, counts in figures.items():
        if isinstance(counts, dict):
            assert counts["ok"] + counts["rejected"] == CASES, (label, counts)
            assert counts["ok"] and counts["rejected"], (label, counts)  # both kinds were tried
    assert figures["respawn_after_s"] < 1.0


def test_digits_int_refuses_are_option_errors():
    """Found by the fuzzer: "²" is a digit to str.isdigit() but not to int()."""
    from circus import OptionError, Show

    show = Show("d", "sleep 1000", stopped=True)
    for key in ("numflies", "uid", "gid", "max_retry"):
        with pytest.raises(OptionError, match=key):
            show.set_opt(key, "²")
    show.set_opt("numflies", "٣")  # an Arabic-Indic 3 is a decimal int() accepts
    assert show.numflies == 3


def test_ids_that_cannot_exist_are_option_errors():
    """Found by bench/fuzz_soak.py: a NUL in a name raised ValueError, gid 2**63 OverflowError."""
    from circus import OptionError, Show

    show = Show("d", "sleep 1000", stopped=True)
    for key, value in [("uid", "\x00"), ("gid", "\x00"), ("gid", 2**63), ("uid", 2**63)]:
        with pytest.raises(OptionError, match=key):
            show.set_opt(key, value)


def test_a_uid_popen_cannot_take_is_a_spawn_error():
    """uid="1099511627776" passes validation (digit strings aren't looked up) but Popen raises
    OverflowError: it must be a spawn_error event and flapping, not an error in a callback."""
    from circus import Trainer
    from helpers import collect, wait_for

    trainer = Trainer()
    trainer.start(background=True)
    try:
        errors = collect(trainer, "show.u.spawn_error")
        show = trainer.add_show("u", "sleep 1000", uid="1099511627776", numflies=2, max_retry=0)
        wait_for(lambda: show.state.value == "failed", timeout=5, what="the failed state")
        wait_for(lambda: errors, what="the spawn_error event (delivered off the loop)")
        assert "uid" in errors[0][1]["error"], errors
        assert trainer.statuses() == {"u": "failed"}
    finally:
        trainer.stop()
