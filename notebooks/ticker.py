"""A tiny fly for the quickstart: prints a tick with its slot number every half second."""

import os
import time

wid = os.environ.get("CIRCUS_WID", "?")
n = 0
while True:
    print(f"fly {wid} tick {n}", flush=True)
    n += 1
    time.sleep(0.5)
