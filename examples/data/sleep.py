"""Sleeps for the given number of seconds; used to keep a runner busy in tests and demos."""

import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
print(f"sleeping {seconds}s", flush=True)
time.sleep(seconds)
print("done")
