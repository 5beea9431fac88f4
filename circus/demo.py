"""`make demo`: a show of 3 flies in the terminal; one killed and respawned, scaled, stopped."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time

from circus import get_trainer

WORKER = """\
import os, time
while True:
    print('worker', os.environ['CIRCUS_WID'], 'alive')
    time.sleep(0.5)
"""


def main() -> None:
    cmd = shlex.join([sys.executable, "-u", "-c", WORKER])
    trainer = get_trainer(cmd, numflies=3, name="workers",
                          graceful_timeout=2)
    t0 = time.monotonic()

    def say(topic: str, payload: dict) -> None:
        if topic.endswith(".output"):
            return
        extra = {k: v for k, v in payload.items() if k in ("fly_id", "fly_pid", "exit_code",
                                                            "signal", "key", "value")}
        print(f"{time.monotonic() - t0:7.3f}s  {topic:24} {extra}")

    trainer.subscribe("", say)
    trainer.start(background=True)
    show = trainer.get_show("workers")
    try:
        print(trainer.summary())
        victim = show.flies[1]
        print(f"\n-- SIGKILL fly {victim.wid} (pid {victim.pid})")
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        while victim.pid in {f.pid for f in show.flies} or len(show) < 3:
            time.sleep(0.0005)
        print(f"-- replaced in {(time.monotonic() - killed_at) * 1000:.1f} ms")
        time.sleep(0.6)
        print("\n-- scale to 5")
        show.numflies = 5
        time.sleep(0.6)
        print(trainer.summary())
        print("\n-- last output of fly 1:", show.get_fly(1).lines(n=2))
        print("\n-- stop")
    finally:
        trainer.stop()
        trainer.events.flush()
        print(trainer.summary())


if __name__ == "__main__":
    main()
