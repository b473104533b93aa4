#!/usr/bin/env python3
"""Independent client for preparing and reading scratch buckets in tests.

Talks to the local test servers directly (boto3 for S3, the GCS JSON API over
plain HTTPS for GCS, azure-storage-blob for Azure Blob on Azurite) - never
through s3cmd, aws, gsutil or a Stowage plugin - so that tests can check what
those tools (driven by Stowage) really did.

Usage: bucket_tool.py {s3|gs|az} COMMAND ARGS...   (a BUCKET is an Azure container)
  mb BUCKET                 create the bucket (ok if it exists)
  rb BUCKET                 delete all objects and the bucket (ok if missing)
  clear BUCKET              delete all objects (and pending S3 multipart uploads)
  seed BUCKET DIR [PREFIX]  upload every file under DIR as PREFIX + relative path
  put BUCKET KEY FILE       upload one file
  get BUCKET KEY OUT        download one object to OUT
  dump BUCKET [PREFIX]      JSON [{"key","size","md5"}] sorted by key; md5 is the
                            hex MD5 of the downloaded bytes
  list BUCKET [PREFIX]      JSON [{"key","size","etag"}] sorted by key, from the
                            listing only (etag as the server reports it, S3
                            quotes stripped; for GCS the base64 md5Hash/etag;
                            for Azure also "content_md5", the hex Content-MD5
                            the listing reports, or null)
  exists BUCKET             exit 0 if the bucket exists, 1 if not

Environment: STOWAGE_TEST_S3_ENDPOINT, STOWAGE_TEST_ACCESS_KEY,
STOWAGE_TEST_SECRET_KEY (s3); STOWAGE_TEST_GCS_ENDPOINT and optionally
STOWAGE_TEST_GCS_CA_CERT (gs); STOWAGE_TEST_AZURE_ENDPOINT (the blob endpoint,
account path included), STOWAGE_TEST_AZURE_ACCOUNT, STOWAGE_TEST_AZURE_KEY
(az). Errors: one line on stderr, exit status 1.
"""

import hashlib
import json
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

WORKERS = 4
# The newest blob API version Azurite 3.35 accepts; azure-storage-blob
# 12.31's default (2026-10-06) is newer and Azurite refuses it.
AZURE_API_VERSION = "2025-11-05"


class ToolError(Exception):
    pass


def env(name):
    value = os.environ.get(name)
    if not value:
        raise ToolError(f"{name} is not set (run under scripts/with-test-env)")
    return value


def walk(root):
    """(relative posix path, absolute path) for every file under root."""
    if not os.path.isdir(root):
        raise ToolError(f"not a directory: {root}")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            out.append((rel, full))
    return out


def md5_stream(chunks):
    h = hashlib.md5()
    size = 0
    for chunk in chunks:
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


class S3:
    def __init__(self):
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3",
            endpoint_url=env("STOWAGE_TEST_S3_ENDPOINT"),
            aws_access_key_id=env("STOWAGE_TEST_ACCESS_KEY"),
            aws_secret_access_key=env("STOWAGE_TEST_SECRET_KEY"),
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=WORKERS * 2,
            ),
        )
        from botocore.exceptions import ClientError

        self.ClientError = ClientError

    def _code(self, err):
        return str(err.response.get("Error", {}).get("Code", ""))

    def exists(self, bucket):
        try:
            self.client.head_bucket(Bucket=bucket)
            return True
        except self.ClientError as err:
            if self._code(err) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise

    def mb(self, bucket):
        try:
            self.client.create_bucket(Bucket=bucket)
        except self.ClientError as err:
            if self._code(err) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def objects(self, bucket, prefix=""):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield {
                    "key": obj["Key"],
                    "size": obj["Size"],
                    "etag": obj["ETag"].strip('"'),
                }

    def clear(self, bucket):
        keys = [o["key"] for o in self.objects(bucket)]
        for i in range(0, len(keys), 1000):
            resp = self.client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )
            if resp.get("Errors"):
                e = resp["Errors"][0]
                raise ToolError(f"delete {e.get('Key')!r}: {e.get('Code')} {e.get('Message')}")
        uploads = self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for up in uploads:
            self.client.abort_multipart_upload(
                Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]
            )

    def delete(self, bucket, key):
        self.client.delete_object(Bucket=bucket, Key=key)

    def rb(self, bucket):
        if not self.exists(bucket):
            return
        self.clear(bucket)
        try:
            self.client.delete_bucket(Bucket=bucket)
        except self.ClientError as err:
            if self._code(err) not in ("404", "NoSuchBucket"):
                raise

    def put(self, bucket, key, path):
        with open(path, "rb") as f:
            self.client.put_object(Bucket=bucket, Key=key, Body=f.read())

    def get_chunks(self, bucket, key):
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        yield from body.iter_chunks(1 << 20)


class GCS:
    def __init__(self):
        import requests
        import urllib3

        self.requests = requests
        self.base = env("STOWAGE_TEST_GCS_ENDPOINT").rstrip("/")
        ca = os.environ.get("STOWAGE_TEST_GCS_CA_CERT")
        self.verify = ca if ca and os.path.exists(ca) else False
        if self.verify is False:
            urllib3.disable_warnings()
        self.local = threading.local()

    @property
    def session(self):
        s = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = self.requests.Session()
        return s

    def call(self, method, path, ok=(200,), **kw):
        # verify per request: a Session.verify would lose to REQUESTS_CA_BUNDLE.
        resp = self.session.request(
            method, self.base + path, timeout=120, verify=self.verify, **kw
        )
        if resp.status_code not in ok:
            text = " ".join(resp.text.split())[:200]
            raise ToolError(f"{method} {path}: HTTP {resp.status_code} {text}")
        return resp

    @staticmethod
    def q(name):
        return quote(name, safe="")

    def exists(self, bucket):
        r = self.call("GET", f"/storage/v1/b/{self.q(bucket)}", ok=(200, 404))
        return r.status_code == 200

    def mb(self, bucket):
        self.call(
            "POST",
            "/storage/v1/b",
            ok=(200, 409),
            params={"project": "test"},
            json={"name": bucket},
        )

    def objects(self, bucket, prefix=""):
        token = None
        while True:
            params = {"prefix": prefix} if prefix else {}
            if token:
                params["pageToken"] = token
            data = self.call("GET", f"/storage/v1/b/{self.q(bucket)}/o", params=params).json()
            for obj in data.get("items") or []:
                yield {
                    "key": obj["name"],
                    "size": int(obj["size"]),
                    "etag": obj.get("etag") or obj.get("md5Hash"),
                }
            token = data.get("nextPageToken")
            if not token:
                return

    def delete(self, bucket, key):
        self.call(
            "DELETE",
            f"/storage/v1/b/{self.q(bucket)}/o/{self.q(key)}",
            ok=(200, 204, 404),
        )

    def clear(self, bucket):
        keys = [o["key"] for o in self.objects(bucket)]
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda k: self.delete(bucket, k), keys))

    def rb(self, bucket):
        if not self.exists(bucket):
            return
        self.clear(bucket)
        self.call("DELETE", f"/storage/v1/b/{self.q(bucket)}", ok=(200, 204, 404))

    def put(self, bucket, key, path):
        with open(path, "rb") as f:
            data = f.read()
        boundary = "stowage-" + uuid.uuid4().hex
        meta = json.dumps({"name": key}).encode()
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                meta,
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        self.call(
            "POST",
            f"/upload/storage/v1/b/{self.q(bucket)}/o",
            params={"uploadType": "multipart"},
            data=body,
            headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        )

    def get_chunks(self, bucket, key):
        r = self.call(
            "GET",
            f"/download/storage/v1/b/{self.q(bucket)}/o/{self.q(key)}",
            params={"alt": "media"},
            stream=True,
        )
        yield from r.iter_content(1 << 20)


class Azure:
    def __init__(self):
        from azure.core import exceptions
        from azure.storage.blob import BlobServiceClient

        self.exceptions = exceptions
        self.service = BlobServiceClient(
            account_url=env("STOWAGE_TEST_AZURE_ENDPOINT"),
            credential={
                "account_name": env("STOWAGE_TEST_AZURE_ACCOUNT"),
                "account_key": env("STOWAGE_TEST_AZURE_KEY"),
            },
            api_version=AZURE_API_VERSION,
        )

    def container(self, bucket):
        return self.service.get_container_client(bucket)

    def exists(self, bucket):
        return self.container(bucket).exists()

    def mb(self, bucket):
        try:
            self.container(bucket).create_container()
        except self.exceptions.ResourceExistsError:
            pass

    def objects(self, bucket, prefix=""):
        for blob in self.container(bucket).list_blobs(name_starts_with=prefix or None):
            md5 = blob.content_settings.content_md5
            yield {
                "key": blob.name,
                "size": blob.size,
                "etag": blob.etag.strip('"'),
                "content_md5": bytes(md5).hex() if md5 else None,
            }

    def delete(self, bucket, key):
        try:
            self.container(bucket).delete_blob(key)
        except self.exceptions.ResourceNotFoundError:
            pass

    def clear(self, bucket):
        keys = [o["key"] for o in self.objects(bucket)]
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda k: self.delete(bucket, k), keys))

    def rb(self, bucket):
        try:
            self.container(bucket).delete_container()
        except self.exceptions.ResourceNotFoundError:
            pass

    def put(self, bucket, key, path):
        with open(path, "rb") as f:
            self.container(bucket).upload_blob(key, f.read(), overwrite=True)

    def get_chunks(self, bucket, key):
        yield from self.container(bucket).download_blob(key).chunks()


STORES = {"s3": S3, "gs": GCS, "az": Azure}


def run(argv):
    if len(argv) < 2 or argv[0] not in STORES:
        raise ToolError("usage: bucket_tool.py {s3|gs|az} COMMAND ARGS... (see --help)")
    kind, cmd, args = argv[0], argv[1], argv[2:]
    arity = {
        "mb": (1, 1),
        "rb": (1, 1),
        "clear": (1, 1),
        "seed": (2, 3),
        "put": (3, 3),
        "get": (3, 3),
        "dump": (1, 2),
        "list": (1, 2),
        "exists": (1, 1),
        "rm": (2, 2),
    }
    if cmd not in arity:
        raise ToolError(f"unknown command {cmd!r}")
    lo, hi = arity[cmd]
    if not lo <= len(args) <= hi:
        raise ToolError(f"{cmd}: expected {lo}..{hi} arguments, got {len(args)}")
    store = STORES[kind]()
    bucket = args[0]

    if cmd == "exists":
        return 0 if store.exists(bucket) else 1
    if cmd == "mb":
        store.mb(bucket)
    elif cmd == "rb":
        store.rb(bucket)
    elif cmd == "clear":
        store.clear(bucket)
    elif cmd == "put":
        store.put(bucket, args[1], args[2])
    elif cmd == "rm":
        store.delete(bucket, args[1])
    elif cmd == "seed":
        prefix = args[2] if len(args) > 2 else ""
        files = walk(args[1])
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda rf: store.put(bucket, prefix + rf[0], rf[1]), files))
    elif cmd == "get":
        out = args[2]
        tmp = out + ".part"
        with open(tmp, "wb") as f:
            for chunk in store.get_chunks(bucket, args[1]):
                f.write(chunk)
        os.replace(tmp, out)
    elif cmd in ("list", "dump"):
        prefix = args[1] if len(args) > 1 else ""
        objs = sorted(store.objects(bucket, prefix), key=lambda o: o["key"])
        if cmd == "dump":

            def one(o):
                md5, size = md5_stream(store.get_chunks(bucket, o["key"]))
                return {"key": o["key"], "size": size, "md5": md5}

            with ThreadPoolExecutor(WORKERS) as pool:
                objs = list(pool.map(one, objs))
        json.dump(objs, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        return run(sys.argv[1:])
    except ToolError as err:
        msg = str(err)
    except Exception as err:  # one line, whatever went wrong
        msg = f"{type(err).__name__}: {err}"
    sys.stderr.write("bucket_tool: error: " + " ".join(msg.split()) + "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
