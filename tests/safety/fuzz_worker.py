"""Decode files listed on stdin's first line (a JSON list) from index argv[1] on, one by one, reporting each:
`start <i>` before, then `ok <i> <seconds>` or `refused <i> <seconds> <message>`. Any other exception is a
bug and ends the worker (exit 3); a hang past argv[2] seconds is ended by faulthandler's watchdog (exit 1),
a crash by the signal: the parent sees the last `start` without its outcome."""

import faulthandler
import json
import sys
import time
from pathlib import Path

from heatlens.data import DataError
from heatlens.data.decode import DecodeOptions, Source, load_image

files = json.loads(sys.stdin.readline())
first, bound = int(sys.argv[1]), float(sys.argv[2])
options = DecodeOptions(32)
for index in range(first, len(files)):
    path, field = files[index]
    print(f"start {index}", flush=True)
    faulthandler.dump_traceback_later(bound, exit=True)  # a watchdog thread: ends a hang even inside C code
    began = time.perf_counter()
    try:
        load_image(Source(Path(path), field), options)
        outcome = "ok"
    except DataError as error:
        outcome = "refused " + json.dumps(str(error))
    except Exception as error:  # noqa: BLE001 - reported to the parent as the bug it is
        print(f"bug {index} {type(error).__name__}: {' '.join(str(error).split())[:300]}", flush=True)
        sys.exit(3)
    finally:
        faulthandler.cancel_dump_traceback_later()
    seconds = time.perf_counter() - began
    kind, _, message = outcome.partition(" ")
    print(f"{kind} {index} {seconds:.4f} {message}".rstrip(), flush=True)
