#!/usr/bin/env python3
"""S3-only moto server for Stowage's integration tests.

Usage: s3_server.py --port-file FILE [--host 127.0.0.1] [--port 0] [--enforce-auth]

Binds (port 0 = a free port chosen by the kernel, so there is no race between
picking a port and binding it), then writes the bound port to --port-file
(atomically) and serves until SIGTERM/SIGINT.

Why not plain `moto_server`: moto's DomainDispatcherApplication guesses the AWS
service of a request from the SigV4 credential scope in the Authorization
header. A SigV2 header (`AWS KEY:SIGNATURE`, as s3cmd sends with
signature_v2 = True and for some requests regardless) is split on "/" as if it
were a scope; when the base64 signature happens to contain exactly four "/",
the split succeeds, a bogus service name comes out, and the request fails with
HTTP 500 "Unable to find appropriate backend" (sporadically, depending on the
signature). moto 5.x has no S3-only mode, so this wrapper dispatches every
request (except moto's own /moto-api/ endpoints) straight to the S3 backend,
and runs conditional PUTs one at a time (see serialize_conditional_puts).
State is in memory (large objects spill to temporary files under $TMPDIR).
"""

import argparse
import os
import signal
import sys
import threading

from server_lifetime import watch_parent


def serialize_conditional_puts(app):
    """moto (5.2.5) honours `If-None-Match: *` on PutObject, but checks that
    the key is absent and then writes, two steps another thread's request can
    fall between: two racing conditional creates could both succeed, which
    S3 never allows. Conditional PUTs are run one at a time here, so the
    check and the write are one step, as on S3."""
    one_at_a_time = threading.Lock()

    def serve(environ, start_response):
        if environ.get("REQUEST_METHOD") == "PUT" and "HTTP_IF_NONE_MATCH" in environ:
            with one_at_a_time:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--parent-pid", type=int, help="exit when this pid is gone")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument(
        "--enforce-auth",
        action="store_true",
        help="check credentials like S3 does (unknown keys get 403 InvalidAccessKeyId)",
    )
    args = parser.parse_args()
    # Own process group: the caller stops us (and any children) with one kill.
    os.setpgrp()
    if args.quiet:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    # Keep moto from reaching out anywhere and from behaving differently on
    # hosts that happen to have AWS settings.
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    os.environ.pop("MOTO_S3_CUSTOM_ENDPOINTS", None)
    if args.enforce_auth:
        # moto checks signatures and keys after this many unauthenticated actions.
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class S3OnlyDispatcher(DomainDispatcherApplication):
        def get_application(self, environ):
            path = environ.get("PATH_INFO", "")
            if isinstance(path, bytes):
                path = path.decode("utf-8", "replace")
            backend = "moto_api" if path.startswith("/moto-api") else "s3"
            with self.lock:
                app = self.app_instances.get(backend)
                if app is None:
                    app = self.create_app(backend)
                    self.app_instances[backend] = app
                return app

    app = serialize_conditional_puts(S3OnlyDispatcher(create_backend_app))
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_address[1]

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns: call it off-thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        watch_parent(args.parent_pid, stop)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    print(f"s3_server: moto (S3 only) listening on http://{args.host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
