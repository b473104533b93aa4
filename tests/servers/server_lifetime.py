"""What every test server shares: it stops when the shell that started it dies."""

import os
import threading


def watch_parent(parent_pid, stop):
    """Stop the server when the shell that started it is gone (e.g. SIGKILL)."""
    import time

    def loop():
        while True:
            time.sleep(1)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                stop(None, None)
                return
            except PermissionError:
                pass

    threading.Thread(target=loop, daemon=True).start()
