"""A pool worker: claims a task row of the SQLite queue, computes it, writes the result back.

usage: python worker.py DB_PATH. Idles (polls the table every 0.1 s) when the queue is empty.
"""

import os
import sqlite3
import sys
import time

db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("PRAGMA busy_timeout = 30000")
wid = int(os.environ.get("CIRCUS_WID", "0"))
while True:
    row = db.execute(
        "UPDATE tasks SET status = 'running', worker = ? WHERE id = "
        "(SELECT id FROM tasks WHERE status = 'todo' ORDER BY id LIMIT 1) RETURNING id, n",
        (os.getpid(),),
    ).fetchone()
    if row is None:
        time.sleep(0.1)
        continue
    task_id, n = row
    result = sum(i * i for i in range(n))  # the "work"
    time.sleep(0.02)
    db.execute("UPDATE tasks SET status = 'done', result = ?, wid = ? WHERE id = ?",
               (result, wid, task_id))
    print(f"task {task_id}: {result}", flush=True)
