"""The part of the GCS XML API that object_store's GCS client speaks, served
over gcp-storage-emulator's own storage, so gsutil and bucket_tool.py (JSON
API) see the objects it writes and the other way round.

The emulator serves only a bare XML PUT and GET. Served here, as GCS does:

* GET /BUCKET?list-type=2: a ListObjectsV2-style listing (prefix, delimiter,
  start-after, max-keys up to 1000, continuation tokens); ETags are the quoted
  hex MD5 of the content, except for objects assembled from parts.
* HEAD and GET /BUCKET/KEY: ETag, Last-Modified, Content-Length,
  x-goog-generation, x-goog-meta-*; GET honours a Range (206 / 416).
* PUT /BUCKET/KEY: x-goog-meta-* kept as the object's custom metadata (the
  JSON API's `metadata`); with x-goog-copy-source, a copy (metadata and all).
  x-goog-if-generation-match is honoured (0: only if absent), 412 otherwise.
* DELETE /BUCKET/KEY.
* Multipart uploads: POST ?uploads, PUT ?partNumber=&uploadId=,
  POST ?uploadId= (parts checked against their ETags), DELETE ?uploadId=.
  The completed object's ETag is `<MD5 of the parts' MD5s>-<parts>`, not an
  MD5, as on GCS (whose own is opaque); the JSON API still shows its md5Hash
  (GCS has none for such objects).

Errors are XML `<Error><Code>` bodies (NoSuchBucket, NoSuchKey, NoSuchUpload,
PreconditionFailed, InvalidRange, InvalidPart). Callers hold the server's
lock: the emulator's storage has none.
"""

import base64
import email.utils
import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from gcp_storage_emulator import server as emu
from gcp_storage_emulator.handlers import objects as emu_objects

PAGE_SIZE = 1000
XML_NAMESPACE = "http://doc.s3.amazonaws.com/2006-03-01"

# Upload id -> {"bucket", "key", "content_type", "metadata", "parts": {n: bytes}}.
UPLOADS = {}

# The emulator's JSON API routes; its route for bare XML PUT/GET (any other
# /BUCKET/KEY path) is replaced by this module.
_JSON_ROUTES = [
    re.compile(regex)
    for regex, handlers in emu.HANDLERS
    if handlers.get("PUT") is not emu_objects.xml_upload
]


class XmlError(Exception):
    """An XML API error answer: HTTP status, GCS error code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code = status, code


def serves(method, path):
    """Whether the request is one for the XML API (not the JSON API)."""
    path = urlsplit(path).path
    return method == "HEAD" or not any(r.fullmatch(path) for r in _JSON_ROUTES)


def handle(handler, method, storage, base_url):
    """Answers one XML API request on `handler` (an http.server handler whose
    body was read into `handler.stowage_body`)."""
    url = urlsplit(handler.path)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    bucket, _, key = url.path[1:].partition("/")
    bucket, key = unquote(bucket), unquote(key)
    request = Request(handler, method, storage, base_url, bucket, key, query)
    try:
        if bucket not in storage.buckets:
            raise XmlError(404, "NoSuchBucket", "The specified bucket does not exist.")
        status, headers, body = route(request)(request)
    except XmlError as err:
        status, headers = err.status, [("Content-Type", "application/xml")]
        body = xml_document("Error", [("Code", err.code), ("Message", str(err))])
    reply(handler, status, headers, body, head=method == "HEAD")


class Request:
    """One XML API request: who asked, for what, with which headers and body."""

    def __init__(self, handler, method, storage, base_url, bucket, key, query):
        self.method, self.storage, self.base_url = method, storage, base_url
        self.bucket, self.key, self.query = bucket, key, query
        self.headers = handler.headers
        self.body = handler.stowage_body or b""


def route(request):
    """The function answering `request`."""
    method, query, key = request.method, request.query, request.key
    if not key:
        if method == "GET" and query.get("list-type") == "2":
            return list_objects
    elif method in ("HEAD", "GET"):
        return get_object
    elif method == "PUT" and "uploadId" in query:
        return put_part
    elif method == "PUT" and "x-goog-copy-source" in request.headers:
        return copy_object
    elif method == "PUT":
        return put_object
    elif method == "POST" and "uploads" in query:
        return initiate_upload
    elif method == "POST" and "uploadId" in query:
        return complete_upload
    elif method == "DELETE" and "uploadId" in query:
        return abort_upload
    elif method == "DELETE":
        return delete_object
    raise XmlError(501, "NotImplemented", "%s %s is not served" % (method, query))


def reply(handler, status, headers, body, head=False):
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    if not any(name == "Content-Length" for name, _ in headers):
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not head:
        handler.wfile.write(body)


def xml_document(root, children):
    """`<root>` holding `children`: (tag, text) pairs or (tag, [children])."""

    def render(items):
        return "".join(
            "<%s>%s</%s>"
            % (
                tag,
                render(value) if isinstance(value, list) else escape(str(value)),
                tag,
            )
            for tag, value in items
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<%s xmlns="%s">%s</%s>'
        % (root, XML_NAMESPACE, render(children), root)
    ).encode()


def xml_reply(root, children, headers=()):
    return (
        200,
        [("Content-Type", "application/xml"), *headers],
        xml_document(root, children),
    )


def etag(obj):
    """The quoted XML ETag: the hex MD5, or the assembled object's own."""
    if obj.get("componentCount"):
        return '"%s"' % obj["etag"]
    return '"%s"' % base64.b64decode(obj["md5Hash"]).hex()


def existing(request, key=None):
    """The object resource of `key` (the request's by default); 404 if none."""
    try:
        return request.storage.get_file_obj(request.bucket, key or request.key)
    except emu_objects.NotFound:
        raise XmlError(404, "NoSuchKey", "The specified key does not exist.")


def check_generation(request):
    """x-goog-if-generation-match: the object's generation, 0 for absent."""
    wanted = request.headers.get("x-goog-if-generation-match")
    if wanted is None:
        return
    try:
        current = request.storage.get_file_obj(request.bucket, request.key)[
            "generation"
        ]
    except emu_objects.NotFound:
        current = "0"
    if wanted != current:
        raise XmlError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )


def user_metadata(headers):
    prefix = "x-goog-meta-"
    return {
        name.lower()[len(prefix) :]: value
        for name, value in headers.items()
        if name.lower().startswith(prefix)
    }


def store(request, content, content_type, metadata, assembled_etag=None, parts=0):
    """Writes `content` as the request's object; returns its resource."""
    obj = emu_objects._make_object_resource(
        request.base_url, request.bucket, request.key, content_type, str(len(content))
    )
    if metadata:
        obj["metadata"] = dict(metadata)
    if parts:
        obj["componentCount"], obj["etag"] = parts, assembled_etag
    obj = emu_objects._checksums(content, obj)
    request.storage.create_file(request.bucket, request.key, content, obj)
    return obj


def written(obj):
    return 200, [("ETag", etag(obj)), ("x-goog-generation", obj["generation"])], b""


def list_objects(request):
    prefix, query = request.query.get("prefix", ""), request.query
    objs, prefixes = request.storage.get_file_list(
        request.bucket, prefix or None, query.get("delimiter") or None
    )
    entries = [(o["name"], o) for o in objs] + [(p, None) for p in prefixes]
    entries.sort(key=lambda entry: entry[0])
    after = query.get("start-after", "")
    if query.get("continuation-token"):
        after = max(
            after, base64.urlsafe_b64decode(query["continuation-token"]).decode()
        )
    entries = [e for e in entries if e[0] > after]
    page_size = min(int(query.get("max-keys") or PAGE_SIZE), PAGE_SIZE)
    page, truncated = entries[:page_size], len(entries) > page_size
    children = [
        ("Name", request.bucket),
        ("Prefix", prefix),
        ("KeyCount", len(page)),
        ("MaxKeys", page_size),
        ("IsTruncated", "true" if truncated else "false"),
    ]
    for name, obj in page:
        if obj is None:
            children.append(("CommonPrefixes", [("Prefix", name)]))
        else:
            children.append(
                (
                    "Contents",
                    [
                        ("Key", name),
                        ("Generation", obj["generation"]),
                        ("LastModified", obj["updated"]),
                        ("ETag", etag(obj)),
                        ("Size", obj["size"]),
                    ],
                )
            )
    if truncated:
        token = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        children.append(("NextContinuationToken", token))
    return xml_reply("ListBucketResult", children)


def get_object(request):
    obj = existing(request)
    content = request.storage.get_file(request.bucket, request.key)
    headers = [
        ("ETag", etag(obj)),
        ("Last-Modified", http_date(obj["updated"])),
        ("Content-Type", obj.get("contentType") or "application/octet-stream"),
        ("x-goog-generation", obj["generation"]),
        ("x-goog-hash", "crc32c=%s,md5=%s" % (obj["crc32c"], obj["md5Hash"])),
        *(("x-goog-meta-" + k, v) for k, v in (obj.get("metadata") or {}).items()),
    ]
    status, wanted = 200, request.headers.get("Range")
    if wanted:
        start, end = byte_range(wanted, len(content))
        headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end, len(content))))
        status, content = 206, content[start : end + 1]
    headers.append(("Content-Length", str(len(content))))
    return status, headers, content


def http_date(rfc3339):
    when = datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%f%z")
    return email.utils.format_datetime(when, usegmt=True)


def byte_range(header, size):
    """(first, last) byte of `bytes=A-B`, `bytes=A-` or `bytes=-N`; 416 if
    it holds no byte of the object."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if m and m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    elif m and m.group(2):
        start, end = max(size - int(m.group(2)), 0), size - 1
    else:
        start, end = 0, -1
    if start > end:
        raise XmlError(416, "InvalidRange", "The requested range cannot be satisfied.")
    return start, end


def put_object(request):
    check_generation(request)
    content_type = request.headers.get("Content-Type") or "application/octet-stream"
    return written(
        store(request, request.body, content_type, user_metadata(request.headers))
    )


def copy_object(request):
    check_generation(request)
    source = unquote(request.headers["x-goog-copy-source"]).lstrip("/")
    source_bucket, _, source_key = source.partition("/")
    if source_bucket != request.bucket:
        raise XmlError(501, "NotImplemented", "copies between buckets are not served")
    obj = existing(request, source_key)
    content = request.storage.get_file(request.bucket, source_key)
    copied = store(
        request,
        content,
        obj.get("contentType"),
        obj.get("metadata"),
        obj.get("etag"),
        obj.get("componentCount", 0),
    )
    return xml_reply(
        "CopyObjectResult",
        [("LastModified", copied["updated"]), ("ETag", etag(copied))],
    )


def delete_object(request):
    existing(request)
    request.storage.delete_file(request.bucket, request.key)
    return 204, [], b""


def initiate_upload(request):
    upload_id = uuid.uuid4().hex
    UPLOADS[upload_id] = {
        "bucket": request.bucket,
        "key": request.key,
        "content_type": request.headers.get("Content-Type")
        or "application/octet-stream",
        "metadata": user_metadata(request.headers),
        "parts": {},
    }
    children = [
        ("Bucket", request.bucket),
        ("Key", request.key),
        ("UploadId", upload_id),
    ]
    return xml_reply("InitiateMultipartUploadResult", children)


def upload_of(request):
    upload = UPLOADS.get(request.query["uploadId"])
    if upload is None or (upload["bucket"], upload["key"]) != (
        request.bucket,
        request.key,
    ):
        raise XmlError(404, "NoSuchUpload", "The requested upload was not found.")
    return upload


def put_part(request):
    upload = upload_of(request)
    upload["parts"][int(request.query["partNumber"])] = request.body
    return 200, [("ETag", '"%s"' % hashlib.md5(request.body).hexdigest())], b""


def complete_upload(request):
    upload = upload_of(request)
    listed = [
        (int(part.findtext("PartNumber")), part.findtext("ETag").strip('"'))
        for part in ET.fromstring(request.body).iter("Part")
    ]
    digests = []
    for number, part_etag in listed:
        part = upload["parts"].get(number)
        if part is None or hashlib.md5(part).hexdigest() != part_etag:
            raise XmlError(
                400, "InvalidPart", "Part %d was not uploaded as listed." % number
            )
        digests.append(hashlib.md5(part).digest())
    content = b"".join(upload["parts"][number] for number, _ in listed)
    assembled = "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(listed))
    obj = store(
        request,
        content,
        upload["content_type"],
        upload["metadata"],
        assembled,
        len(listed),
    )
    del UPLOADS[request.query["uploadId"]]
    children = [("Bucket", request.bucket), ("Key", request.key), ("ETag", etag(obj))]
    return xml_reply(
        "CompleteMultipartUploadResult",
        children,
        headers=[("x-goog-generation", obj["generation"])],
    )


def abort_upload(request):
    upload_of(request)
    del UPLOADS[request.query["uploadId"]]
    return 204, [], b""
