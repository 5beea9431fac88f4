"""Run our manager in the foreground, the way the benchmark starts every manager.

    python bench/_ours.py --cmd "/bin/sleep 1000" --numflies 200 --graceful-timeout 2

``trainer.start()`` blocks in a plain script until SIGTERM or SIGINT, then stops every fly.
When a ``circusd CONFIG.ini`` daemon exists, ``_managers.Ours`` can run that instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from circus import get_trainer
except ImportError:  # not installed in this interpreter: use the work tree
    sys.path.append(str(Path(__file__).resolve().parent.parent))
    from circus import get_trainer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="run circus-notebook's trainer in the foreground")
    parser.add_argument("--cmd", required=True, help="the fly's command line")
    parser.add_argument("--numflies", type=int, default=1)
    parser.add_argument("--graceful-timeout", type=float, default=30.0)
    parser.add_argument("--stdout-file", help="append the flies' stdout to this file")
    args = parser.parse_args(argv)

    trainer = get_trainer(args.cmd, numflies=args.numflies, name="w")
    show = trainer.get_show("w")
    show.set_opt("graceful_timeout", args.graceful_timeout)
    if args.stdout_file:
        show.set_opt("stdout_file", args.stdout_file)
    trainer.start()


if __name__ == "__main__":
    main()
