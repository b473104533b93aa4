#!/usr/bin/env python3
"""GCS JSON-API emulator for Stowage's integration tests (gsutil-compatible).

Usage: gcs_server.py --port-file FILE --cert-dir DIR [--host 127.0.0.1]
                     [--port 0] [--no-tls] [--quiet]

A thin wrapper around gcp-storage-emulator (in-memory storage) that fixes what
stops gsutil from working against it:

* gsutil always talks https to gs_json_host, so by default the server speaks
  TLS with a certificate (SAN: IP 127.0.0.1, DNS localhost) signed by a
  throwaway CA, both generated at start into --cert-dir (cert.pem: the CA,
  what clients trust; server.pem, key.pem). URLs the emulator
  hands back (resumable-upload Location, mediaLink) say https:// accordingly.
* gsutil (apitools) sends `multipart/related; boundary='===...=='` - a
  single-quoted boundary, which the emulator's e-mail parser rejects.
* The emulator parses multipart/related bodies with the e-mail package, which
  drops a trailing "\\r" from a binary part (apitools separates parts with a
  bare "\\n", so a payload ending in "\\r" looks like a CRLF line end); about
  1 in 256 random files came back one byte short. Bodies are parsed
  byte-exactly here, using the line ending of the first boundary line.
* gsutil starts resumable uploads (files >= 8 MiB) at /resumable/upload/...;
  served as an alias of /upload/....
* The emulator writes object names into mediaLink/selfLink unencoded; gsutil
  downloads from mediaLink, so names containing '#', '%' or '?' gave 404.
* Metadata is not re-serialized to JSON on every write, and deletes are hard
  deletes (no soft-delete copies kept in memory).
* The emulator ignores ifGenerationMatch on uploads (a second upload with
  generation-match 0 replaced the object); generation 0 is honoured here
  (412 when the object exists), for the conditional create.
* object_store's GCS client speaks the XML API, of which the emulator serves
  only a bare PUT and GET: gcs_xml_api.py serves what it uses (listings,
  HEAD, ranges, metadata, conditional create, copy, multipart uploads) over
  the emulator's storage; HEAD requests and paths outside the JSON API go
  there.
* The emulator's server is single-threaded HTTP/1.0; this one is threaded
  HTTP/1.1 (keep-alive), with request bodies read outside a global lock and
  request handling serialized under it (the emulator's storage has no locking).

Binds (port 0 = kernel-chosen free port), writes the port to --port-file
atomically, serves until SIGTERM/SIGINT. Health check: GET / -> "OK".
"""

import argparse
import base64
import datetime
import ipaddress
import json
import logging
import os
import quopri
import re
import signal
import socketserver
import ssl
import sys
import threading

import gcs_xml_api
from server_lifetime import watch_parent
import traceback
from email.parser import BytesParser
from http import HTTPStatus
from http import server as http_server
from urllib.parse import quote, urlparse

from gcp_storage_emulator import server as emu
from gcp_storage_emulator.handlers import objects as emu_objects
from gcp_storage_emulator.storage import Storage

LOCK = threading.Lock()
SCHEME = "https"
QUIET = False
MAX_BODY = 1 << 31

_BOUNDARY_RE = re.compile(
    r"""boundary\s*=\s*(?:"([^"]*)"|'([^']*)'|([^;\s]+))""", re.IGNORECASE
)


def boundary_of(content_type):
    m = _BOUNDARY_RE.search(content_type)
    if not m:
        raise ValueError("multipart body without boundary")
    return next(g for g in m.groups() if g is not None)


def parse_multipart(raw, boundary):
    """Split a multipart body into [(headers dict, body bytes)], byte-exactly.

    Per RFC 2046 the line break before a delimiter belongs to the delimiter.
    Which line break ("\\r\\n" or a bare "\\n", as apitools writes) is taken
    from the first boundary line, so a part that ends in "\\r" keeps it.
    """
    dash = b"--" + boundary.encode("latin-1")
    if raw.startswith(dash):
        start = 0
    else:
        i = raw.find(b"\n" + dash)
        if i < 0:
            raise ValueError("multipart boundary not found")
        start = i + 1
    eol = raw.find(b"\n", start + len(dash))
    if eol < 0:
        raise ValueError("truncated multipart body")
    nl = b"\r\n" if raw[eol - 1 : eol] == b"\r" else b"\n"
    delim = nl + dash
    bodies = []
    pos = eol + 1
    while True:
        nxt = raw.find(delim, pos)
        if nxt < 0:
            raise ValueError("unterminated multipart body")
        bodies.append(raw[pos:nxt])
        after = nxt + len(delim)
        if raw[after : after + 2] == b"--":
            break
        eol = raw.find(b"\n", after)
        if eol < 0:
            raise ValueError("truncated multipart body")
        pos = eol + 1
    parts = []
    sep = nl + nl
    for part in bodies:
        if part.startswith(nl):
            head, body = b"", part[len(nl) :]
        else:
            j = part.find(sep)
            head, body = (part, b"") if j < 0 else (part[:j], part[j + len(sep) :])
        headers = {}
        for line in head.split(nl):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode(
                    "latin-1"
                )
        cte = headers.get("content-transfer-encoding", "").lower()
        if cte == "base64":
            body = base64.b64decode(body)
        elif cte == "quoted-printable":
            body = quopri.decodestring(body)
        parts.append((headers, body))
    return parts


def read_body(handler):
    """Read the raw request body (Content-Length or chunked); None if none."""
    length = handler.headers.get("Content-Length")
    if length:
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        data = handler.rfile.read(n)
        if len(data) != n:
            raise ValueError("short request body")
        return data
    te = handler.headers.get("Transfer-Encoding", "")
    if te.lower() == "chunked":
        chunks = []
        while True:
            line = handler.rfile.readline(1024).split(b";")[0].strip()
            size = int(line, 16) if line else 0
            if size == 0:
                # trailers until the empty line
                while handler.rfile.readline(1024).strip():
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(16)
        return b"".join(chunks)
    return None


def read_data(request_handler, query):
    """Replacement for gcp_storage_emulator.server._read_data."""
    raw = emu._decode_raw_data(request_handler.stowage_body, request_handler)
    if not raw:
        return None
    content_type = (
        request_handler.headers.get("Content-Type") or "application/octet-stream"
    )
    ct = content_type.lower()
    if ct.startswith("application/json") and "upload_id" not in query:
        return json.loads(raw)
    if ct.startswith("multipart/mixed"):
        # Batch requests (text only): normalise the boundary quoting, then let
        # the emulator's own parser handle the nested HTTP requests.
        b = boundary_of(content_type)
        header = ('Content-Type: multipart/mixed; boundary="%s"\r\n' % b).encode()
        msg = BytesParser().parsebytes(header + raw)
        return [emu._parse_batch_item(item) for item in msg.get_payload()]
    if ct.startswith("multipart/"):
        parts = parse_multipart(raw, boundary_of(content_type))
        if len(parts) < 2:
            raise ValueError("multipart upload needs metadata and media parts")
        meta_headers, meta = parts[0]
        media_headers, media = parts[1]
        media_type = media_headers.get("content-type", "application/octet-stream")
        return {
            "meta": json.loads(meta) if meta.strip() else {},
            "content": media,
            "content-type": media_type.split(";")[0].strip().lower(),
        }
    return raw


class Request(emu.Request):
    """Emulator request whose self-URLs use the scheme we actually serve."""

    def __init__(self, request_handler, method):
        super().__init__(request_handler, method)
        if SCHEME == "https" and self._base_url.startswith("http://"):
            self._base_url = "https://" + self._base_url[len("http://") :]
            self._full_url = self._base_url + self._path
            self._parsed_url = urlparse(self._full_url)


_orig_make_object_resource = emu_objects._make_object_resource


def make_object_resource(base_url, bucket_name, object_name, *args, **kwargs):
    """The emulator puts object names into selfLink/mediaLink unencoded; gsutil
    downloads from mediaLink, so names with '#', '%' or '?' came back 404."""
    obj = _orig_make_object_resource(
        base_url, bucket_name, object_name, *args, **kwargs
    )
    b, o = quote(bucket_name, safe=""), quote(object_name, safe="")
    obj["selfLink"] = "{}/storage/v1/b/{}/o/{}".format(base_url, b, o)
    obj["mediaLink"] = "{}/download/storage/v1/b/{}/o/{}?generation={}&alt=media".format(
        base_url, b, o, obj["generation"]
    )
    return obj


def honour_generation_zero(upload):
    """The emulator ignores ifGenerationMatch; real GCS refuses an upload
    with ifGenerationMatch=0 (gsutil -h x-goog-if-generation-match:0) with
    412 when the object exists. Uploads run under LOCK, so the check and the
    write are one atomic step, as on GCS. Other generations are not served."""

    def checked(request, response, storage):
        if request.query.get("ifGenerationMatch", [None])[0] == "0":
            if "name" in request.query:
                name = request.query["name"][0]
            else:
                name = request.data["meta"].get("name")
            try:
                storage.get_file_obj(request.params["bucket_name"], name)
            except emu_objects.NotFound:
                pass
            else:
                response.status = HTTPStatus.PRECONDITION_FAILED
                response.json(
                    {
                        "error": {
                            "code": 412,
                            "message": "At least one of the pre-conditions you specified did not hold.",
                            "errors": [{"reason": "conditionNotMet"}],
                        }
                    }
                )
                return None
        return upload(request, response, storage)

    return checked


emu._read_data = read_data
emu.Request = Request
emu_objects._make_object_resource = make_object_resource
emu_objects._media_upload = honour_generation_zero(emu_objects._media_upload)
emu_objects._multipart_upload = honour_generation_zero(emu_objects._multipart_upload)


class Handler(emu.RequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    # Headers and body go out in separate writes; with Nagle + delayed ACK
    # every keep-alive request would take ~40 ms.
    disable_nagle_algorithm = True

    def send_response(self, *args, **kwargs):
        self.stowage_sent = True
        super().send_response(*args, **kwargs)

    def _error(self, status, message):
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _dispatch(self, method):
        self.stowage_sent = False
        # gsutil (apitools) starts resumable uploads at /resumable/upload/...,
        # which real GCS accepts as an alias of /upload/....
        if self.path.startswith("/resumable/upload/"):
            self.path = self.path[len("/resumable") :]
        try:
            self.stowage_body = read_body(self)
        except Exception as err:  # malformed request
            self._error(400, "bad request body: %s" % err)
            return
        with LOCK:
            try:
                if gcs_xml_api.serves(method, self.path):
                    base_url = Request(self, method).base_url
                    gcs_xml_api.handle(self, method, self.storage, base_url)
                else:
                    emu.Router(self).handle(method)
            except Exception as err:
                traceback.print_exc(file=sys.stderr)
                if not self.stowage_sent:
                    self._error(500, "%s: %s" % (type(err).__name__, err))
                else:
                    self.close_connection = True

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def log_message(self, format, *args):
        if not QUIET:
            sys.stderr.write(
                "%s [%s] %s\n"
                % (self.address_string(), self.log_date_time_string(), format % args)
            )


class MemoryStorage(Storage):
    """In-memory storage without the per-write JSON dump of all metadata
    (O(objects) per request) and without soft delete (deleted objects would
    otherwise stay in memory for 7 days)."""

    def __init__(self):
        super().__init__(use_memory_fs=True, data_dir=os.getcwd())

    def _write_config_to_file(self):
        pass

    def _bucket_soft_delete_retention_seconds(self, bucket_name):
        return 0


class ThreadingServer(socketserver.ThreadingMixIn, http_server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_cert(cert_dir):
    """A throwaway CA (cert.pem: what clients trust) and the server's
    certificate signed by it (server.pem, key.pem; SAN 127.0.0.1, localhost).
    A CA apart from the server's certificate: webpki (rustls) refuses a CA
    certificate used as the server's own. Returns (server.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def usage(cert_sign):
        return x509.KeyUsage(
            digital_signature=not cert_sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    def certificate(subject, issuer, key, issuer_key, extensions):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    def name(common_name):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("Stowage test CA")
    ca = certificate(
        ca_name,
        ca_name,
        ca_key,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (usage(cert_sign=True), True),
        ],
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(
        name("127.0.0.1"),
        ca_name,
        key,
        ca_key,
        [
            (
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                    ]
                ),
                False,
            ),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                False,
            ),
        ],
    )
    os.makedirs(cert_dir, exist_ok=True)
    key_path = os.path.join(cert_dir, "key.pem")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    os.chmod(key_path, 0o600)
    server_path = os.path.join(cert_dir, "server.pem")
    for path, cert in ((os.path.join(cert_dir, "cert.pem"), ca), (server_path, server)):
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    return server_path, key_path


def main():
    global SCHEME, QUIET
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--cert-dir", help="where to write cert.pem/key.pem")
    parser.add_argument("--no-tls", action="store_true", help="serve plain http")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument("--parent-pid", type=int, help="exit when this pid is gone")
    args = parser.parse_args()
    # Own process group: the caller stops us (and any children) with one kill.
    os.setpgrp()
    QUIET = args.quiet
    SCHEME = "http" if args.no_tls else "https"
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    storage = MemoryStorage()
    httpd = ThreadingServer(
        (args.host, args.port), lambda *a, **kw: Handler(storage, *a, **kw)
    )
    if SCHEME == "https":
        if not args.cert_dir:
            parser.error("--cert-dir is required unless --no-tls")
        cert_path, key_path = make_cert(args.cert_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        # Handshake lazily in the per-connection thread, not in accept().
        httpd.socket = ctx.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    port = httpd.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        watch_parent(args.parent_pid, stop)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    sys.stderr.write(
        "gcs_server: listening on %s://%s:%d\n" % (SCHEME, args.host, port)
    )
    sys.stderr.flush()
    httpd.serve_forever()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
