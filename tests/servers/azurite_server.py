#!/usr/bin/env python3
"""Azurite's blob service on 127.0.0.1 at a free port, for Stowage's tests.

Runs `azurite-blob` (installed by scripts/test-env from tests/servers/azurite)
as a child: in-memory persistence, telemetry off, `--silent` (Azurite's access
log would print request URLs, SAS signatures included), `--blobPort 0` so the
kernel picks the port. Reads the port from Azurite's start-up line, writes it
to --port-file, and stops Azurite when it is told to stop (SIGTERM/SIGINT),
when the shell that started it dies (--parent-pid), or when it dies itself
(the child gets SIGTERM through PR_SET_PDEATHSIG).

The account and its key come from the environment (AZURITE_ACCOUNTS,
`name:base64key`), never from the command line; without it Azurite would
serve only its well-known development account, so it is required.
"""

import argparse
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading

from server_lifetime import watch_parent

LISTENING = re.compile(r"successfully listens on https?://[^:/\s]+:(\d+)")
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the child, before exec: SIGTERM when this wrapper dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def write_port(port_file, port):
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, port_file)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--azurite", required=True, help="path of the azurite-blob executable")
    parser.add_argument("--workdir", required=True, help="Azurite's working directory")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--parent-pid", type=int, help="exit when this pid is gone")
    parser.add_argument("--quiet", action="store_true", help="accepted for symmetry: Azurite is always --silent")
    parser.add_argument(
        "--extent-memory-limit-mib",
        type=int,
        default=1024,
        help="cap on in-memory blob data (Azurite's default is half the machine's memory)",
    )
    args = parser.parse_args()
    if ":" not in os.environ.get("AZURITE_ACCOUNTS", ""):
        print("azurite_server: AZURITE_ACCOUNTS (name:key) is not set", file=sys.stderr)
        return 2

    child = subprocess.Popen(
        [
            args.azurite,
            "--blobHost", "127.0.0.1",
            "--blobPort", "0",
            "--inMemoryPersistence",
            "--extentMemoryLimit", str(args.extent_memory_limit_mib),
            "--disableTelemetry",
            "--silent",
        ],
        cwd=args.workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )

    def stop(signum, frame):
        if child.poll() is None:
            child.terminate()
            threading.Timer(5, child.kill).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        watch_parent(args.parent_pid, stop)

    for raw in child.stdout:
        line = raw.decode("utf-8", "replace")
        sys.stderr.write(line)
        sys.stderr.flush()
        found = LISTENING.search(line)
        if found:
            write_port(args.port_file, int(found.group(1)))
    code = child.wait()
    # Exit at once: a pending kill timer must not keep the wrapper alive.
    os._exit(0 if code in (0, -signal.SIGTERM) else 1)


if __name__ == "__main__":
    sys.exit(main())
