#!/usr/bin/env python3
"""Stowage benchmark: restore by sync against wipe-and-reupload, per plugin.

Run it with scripts/bench (which builds release, starts the test servers and
the request-counting proxy, and sets the variables read here). See
docs/BENCHMARKS.md for what is measured and how to read the results.

For each plugin (s3cmd, aws on moto through the proxy; gsutil on the GCS
emulator) and each repetition, the bucket goes through
  scenario 1: full restore into an empty bucket,
  scenario 2: restore after drift (1% changed - half of them same size,
              written after the backup so their local copies look older -,
              0.5% added, 0.5% deleted since the backup),
  scenario 3: the same restore again (no-op),
each measured three ways: legacy (GitLab backup-utility: copy the bucket to
the tmp bucket, delete every object, upload each top-level directory), bare
(the tool's own sync by hand), stowage (`stowage restore`). Every result is
checked against the backup with boto3 / the GCS JSON API, never the tool.

`--plugins peers` is the side-by-side run of issue 14: on one bucket set,
the same archive and drift, legacy (with s3cmd), `stowage restore` with the
native objstore plugin and with the s3cmd and aws plugins, `s5cmd sync
--delete` and `rclone sync --checksum`; its results end with the native
plugin's targets (scenario walls against legacy and the peers, PUTs against
the plan, LIST pages per listing, peak RSS from 100,000 objects).

`--shards 1,2,4` runs each Stowage contender once per N: N `restore --shards
N` processes at once (JOB_COMPLETION_INDEX 0..N-1), as the pods of a
Kubernetes Indexed Job, named `objstore×2` and so on. The wall time is from
the start of the first to the end of the last, client CPU is summed over
the shards, peak RSS is the largest shard's; the table gains the speed-up
over the unsharded restore (N = 1) of the same run.

`--archive-in-bucket` uploads the archive once into a bucket on moto
(straight, not through the proxy, before any measured run) and has every
Stowage contender restore it from there (`--file s3://<bucket>/<name>`):
unsharded, the plugin downloads it whole; shards whose plugin reads byte
ranges fetch only their part. The table gains what the contender fetched
of the archive (GETs and MiB, from the ranges the proxy saw).
"""

import argparse
import base64
import functools
import hashlib
import io
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

COMPONENTS = ["artifacts", "uploads"]
MiB = 1 << 20
SCENARIOS = {
    1: "full restore into an empty bucket",
    2: "restore after drift (1% changed, 0.5% added, 0.5% deleted)",
    3: "the same restore again (no-op)",
}
METHODS = ["legacy", "bare", "stowage"]
# `--plugins peers`: one run, one bucket set, every contender on the same
# data. legacy is GitLab's procedure with s3cmd (backup-utility's default);
# objstore / s3cmd / aws are `stowage restore` with that plugin; s5cmd and
# rclone are the peers' own syncs of the untarred component.
PEERS = "peers"
PEER_CONTENDERS = ["legacy", "objstore", "s3cmd", "aws", "s5cmd", "rclone"]
STOWAGE_PLUGINS = ["objstore", "s3cmd", "aws"]
# rclone's S3 remote, configured through its environment (no config file,
# no secret in argv: env_auth reads the AWS credentials file).
RCLONE_REMOTE = "bench"
# `--shards 1,2,4`: a Stowage contender run as N shard processes at once is
# named `<contender>×N` (objstore×2); with N = 1 it is the unsharded restore.
SHARD_MARK = "×"
# `--archive-in-bucket`: the bucket on moto the archive is uploaded into.
ARCHIVE_BUCKET = "bench-archive"
# What a sharded restore leaves in the backup destination about an
# archive's validation (docs/DESIGN.md, "Sharded restores").
VERDICT_PREFIX = ".stowage-validated."


def shard_contender(name, shards):
    """The contender's name for a run of `shards` processes."""
    return name if shards == 1 else f"{name}{SHARD_MARK}{shards}"


def unsharded_contender(name):
    """The unsharded restore a sharded contender is compared with."""
    return name.split(SHARD_MARK, 1)[0]


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bench: {name} is not set; run scripts/bench")
    return value


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data


def generate(n, seed):
    """Deterministic objects: {component: {key: (size, content_seed)}}.

    Keys look like GitLab's: uploads under @hashed/<2>/<2>/<sha256>/<secret>/,
    artifacts under <2>/<2>/<sha256>/<date>/<job>/<id>/. Sizes are mostly
    1-64 KiB; n/1000 (at least 4) objects are 1-20 MiB, two of them above
    s3cmd's (15 MiB) and aws's (8 MiB) multipart thresholds.
    """
    rng = random.Random(seed)
    n_large = max(4, n // 1000)
    large_at = set(rng.sample(range(n), n_large))
    forced = [18 * MiB + 12345, 9 * MiB + 777]
    objects = {c: {} for c in COMPONENTS}
    projects = max(1, n // 25)
    for i in range(n):
        project = hashlib.sha256(f"project-{rng.randrange(projects)}".encode()).hexdigest()
        secret = "%032x" % rng.getrandbits(128)
        if rng.random() < 0.6:
            component = "uploads"
            name = rng.choice(["image.png", "screenshot 1.png", "report.pdf", "logo.svg", "notes.txt", "diagram.jpg"])
            key = f"@hashed/{project[:2]}/{project[2:4]}/{project}/{secret}/{name}"
        else:
            component = "artifacts"
            day = f"2026_{rng.randint(1, 12):02d}_{rng.randint(1, 28):02d}"
            job = rng.randint(1, 10**6)
            name = rng.choice(["artifacts.zip", "job.log", "metadata.gz"])
            key = f"{project[:2]}/{project[2:4]}/{project}/{day}/{job}/{job * 3 + rng.randint(0, 2)}/{name}"
        if i in large_at:
            size = forced.pop() if forced else rng.randint(1 * MiB, 20 * MiB)
        else:
            size = rng.randint(1024, 64 * 1024)
        objects[component][key] = (size, rng.getrandbits(64))
    return objects


def content(size, content_seed):
    return random.Random(content_seed).randbytes(size)


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def write_tree(root, objects, mtime):
    for key, (size, cseed) in objects.items():
        path = os.path.join(root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(size, cseed))
        os.utime(path, (mtime, mtime))


def shallow_key(key):
    """`key` with only its project's path as folders (see --rss-shallow)."""
    parts = key.split("/")
    folders = 4 if key.startswith("@hashed/") else 3
    return "/".join(parts[:folders]) + "/" + "-".join(parts[folders:])


def drift(objects, seed):
    """The changes since the backup: (changed {key: (size, seed)}, added, deleted keys)."""
    rng = random.Random(seed + 1)
    keys = sorted(objects)
    n = len(keys)
    n_changed = max(2, n // 100)
    n_added = max(1, n // 200)
    n_deleted = max(1, n // 200)
    picked = rng.sample(keys, n_changed + n_deleted)
    changed = {}
    for i, key in enumerate(picked[:n_changed]):
        size, _ = objects[key]
        if i % 2 == 0:  # same size, new content
            changed[key] = (size, rng.getrandbits(64))
        else:
            changed[key] = (max(1, size + rng.randint(-500, 500) or 1), rng.getrandbits(64))
    deleted = picked[n_changed:]
    added = {}
    for i in range(n_added):
        key = f"{keys[rng.randrange(n)].rsplit('/', 1)[0]}/added-{i}.bin"
        added[key] = (rng.randint(1024, 64 * 1024), rng.getrandbits(64))
    return changed, added, deleted


# ---------------------------------------------------------------- stores


class S3Store:
    """boto3 straight to moto (not through the proxy): preparing and checking."""

    def __init__(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers"))
        import bucket_tool

        self.client = bucket_tool.S3().client

    def mb(self, bucket):
        try:
            self.client.create_bucket(Bucket=bucket)
        except self.client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def listing(self, bucket):
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
        return out

    def clear(self, bucket):
        keys = list(self.listing(bucket))
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})

    def put(self, bucket, key, data):
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def upload(self, bucket, key, path):
        """The file at `path` as the object `key` (multipart when large)."""
        self.client.upload_file(path, bucket, key)

    def delete(self, bucket, key):
        self.client.delete_object(Bucket=bucket, Key=key)

    def md5_of(self, bucket, key):
        return md5_hex(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())


class GcsStore:
    """The GCS JSON API straight to the emulator."""

    def __init__(self):
        import requests

        self.session = requests.Session()
        # The emulator's own certificate; trust_env off, or REQUESTS_CA_BUNDLE
        # in the environment would win over it.
        self.session.trust_env = False
        self.session.verify = env("STOWAGE_TEST_GCS_CA_CERT")
        self.base = env("STOWAGE_TEST_GCS_ENDPOINT")

    def mb(self, bucket):
        r = self.session.post(f"{self.base}/storage/v1/b", params={"project": "test"}, json={"name": bucket})
        if r.status_code not in (200, 409):
            r.raise_for_status()

    def listing(self, bucket):
        from urllib.parse import quote

        out, token = {}, None
        while True:
            params = {"pageToken": token} if token else {}
            r = self.session.get(f"{self.base}/storage/v1/b/{quote(bucket, safe='')}/o", params=params)
            r.raise_for_status()
            body = r.json()
            for o in body.get("items", []):
                md5 = base64.b64decode(o["md5Hash"]).hex() if o.get("md5Hash") else ""
                out[o["name"]] = (int(o["size"]), md5)
            token = body.get("nextPageToken")
            if not token:
                return out

    def clear(self, bucket):
        from urllib.parse import quote

        keys = list(self.listing(bucket))

        def rm(key):
            self.session.delete(f"{self.base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(rm, keys))

    def put(self, bucket, key, data):
        from urllib.parse import quote

        r = self.session.post(
            f"{self.base}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "media", "name": key},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        r.raise_for_status()

    def delete(self, bucket, key):
        from urllib.parse import quote

        self.session.delete(f"{self.base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}")

    def md5_of(self, bucket, key):
        from urllib.parse import quote

        r = self.session.get(f"{self.base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}", params={"alt": "media"})
        r.raise_for_status()
        return md5_hex(r.content)


def verify(store, bucket, expected):
    """Problems of `bucket` against `expected` {key: (size, md5)}: [] when equal.

    Single-part S3 ETags (and GCS md5Hash) are the server's MD5 of the bytes
    it stored; objects with a multipart ETag are downloaded and hashed.
    """
    listing = store.listing(bucket)
    problems = []
    for key, (size, md5) in expected.items():
        got = listing.get(key)
        if got is None:
            problems.append(f"missing {key}")
        elif got[0] != size:
            problems.append(f"size {key}")
        elif (got[1] if len(got[1]) == 32 else store.md5_of(bucket, key)) != md5:
            problems.append(f"content {key}")
    problems += [f"extra {key}" for key in listing if key not in expected]
    return problems


def range_length(header, size):
    """The bytes a GET with the `Range` header `header` ("-" when it had
    none) asks for of an object of `size` bytes."""
    if header == "-":
        return size
    first, last = header.removeprefix("bytes=").split("-", 1)
    if not first:
        return min(int(last), size)
    return min(int(last) + 1 if last else size, size) - int(first)


def planned_changes(scenario, objects, drifts):
    """What a correct restore must change in the scenario: uploads (the
    objects the bucket lacks or holds other content for) and deletes (the
    objects the backup does not have)."""
    if scenario == 1:
        return {"uploads": sum(len(objects[c]) for c in COMPONENTS), "deletes": 0}
    if scenario == 2:
        return {"uploads": sum(len(drifts[c][0]) + len(drifts[c][2]) for c in COMPONENTS),
                "deletes": sum(len(drifts[c][1]) for c in COMPONENTS)}
    return {"uploads": 0, "deletes": 0}


def wrong_by_kind(problems):
    """How a bucket is wrong, from verify()'s problems: objects whose
    content is not the backup's (stale), missing from it, or extra."""
    kinds = {"stale": 0, "missing": 0, "extra": 0}
    for problem in problems:
        kind = problem.split(" ", 1)[0]
        kinds["stale" if kind in ("size", "content") else kind] += 1
    return kinds


# ---------------------------------------------------------------- running


class Proxy:
    def __init__(self, url):
        self.url = url

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(self.url + path, method=method, data=data)
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    def set_latency(self, ms):
        """A delay before every request of every class (a stand-in for the
        round trip to a remote S3); 0 turns the proxy's faults off."""
        self._call("POST", "/__proxy/faults", {"delay_ms": ms} if ms else {})

    def reset(self):
        self._call("POST", "/__proxy/reset")

    def stats(self):
        return self._call("GET", "/__proxy/stats")


def run(cmd, envs, log_file, check=True):
    with open(log_file, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        result = subprocess.run(cmd, env=envs, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}; see {log_file}")
    return result.returncode


def vm_hwm_kib(pid):
    """The process's peak RSS so far (VmHWM), or 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_sampling_rss(commands, log_file):
    """Starts every (cmd, envs) of `commands` at once and waits for all,
    sampling each process's VmHWM (not its children's) every 10 ms. Returns
    per command (rc, peak KiB, stdout, seconds from the start to its exit)."""
    with open(log_file, "ab") as err:
        for cmd, _ in commands:
            err.write(("$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        # Reports go to files, not pipes: a process whose pipe is full would
        # wait while another is read.
        outs = [tempfile.TemporaryFile() for _ in commands]
        started = time.monotonic()
        procs = [subprocess.Popen(cmd, env=envs, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
                 for (cmd, envs), out in zip(commands, outs)]
        peaks, ended = [0] * len(procs), [None] * len(procs)
        while None in ended:
            for i, proc in enumerate(procs):
                if ended[i] is None:
                    peaks[i] = max(peaks[i], vm_hwm_kib(proc.pid))
                    if proc.poll() is not None:
                        ended[i] = time.monotonic() - started
            time.sleep(0.01)
    results = []
    for proc, peak, out, seconds in zip(procs, peaks, outs, ended):
        out.seek(0)
        results.append((proc.returncode, peak, out.read().decode(errors="replace"), seconds))
        out.close()
    return results


def server_cpu_s(pid):
    """CPU seconds (user + system) the server process has used so far, or
    None when it is not known (an endpoint not started by scripts/test-env)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def children_cpu_s():
    """CPU seconds of every child process waited for so far (the tools, and
    stowage with the tools it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.bin = env("STOWAGE_BENCH_BIN")
        self.proxy = Proxy(env("STOWAGE_BENCH_PROXY"))
        self.s3 = S3Store()
        self.gcs = None
        self.records = []
        self.uptime = {}  # `uptime` before and after the run
        # `--archive-in-bucket`: the archive's object name in ARCHIVE_BUCKET.
        self.archive_object = None
        self.log_file = os.path.join(work, "tools.log")

    # -- configs -------------------------------------------------------

    def tool_env(self, plugin):
        e = dict(os.environ)
        if plugin == "aws":
            e["AWS_CONFIG_FILE"] = env("STOWAGE_TEST_AWS_CONFIG")
            e["AWS_SHARED_CREDENTIALS_FILE"] = env("STOWAGE_TEST_AWS_CREDENTIALS")
            e["AWS_ENDPOINT_URL"] = self.proxy.url
        if plugin == "gsutil":
            e["BOTO_CONFIG"] = env("STOWAGE_TEST_BOTO_CONFIG")
        if plugin == "s5cmd":
            e["AWS_SHARED_CREDENTIALS_FILE"] = env("STOWAGE_TEST_AWS_CREDENTIALS")
            e["AWS_REGION"] = "us-east-1"
        if plugin == "rclone":
            # rclone 1.60 fails to start when AWS_CA_BUNDLE is set.
            e.pop("AWS_CA_BUNDLE", None)
            e["AWS_SHARED_CREDENTIALS_FILE"] = env("STOWAGE_TEST_AWS_CREDENTIALS")
            e["RCLONE_CONFIG"] = os.path.join(self.work, "rclone.conf")
            remote = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
            e[remote + "TYPE"] = "s3"
            e[remote + "PROVIDER"] = "Other"
            e[remote + "ENV_AUTH"] = "true"
            e[remote + "ENDPOINT"] = self.proxy.url
            e[remote + "REGION"] = "us-east-1"
            e[remote + "FORCE_PATH_STYLE"] = "true"
        return e

    def write_configs(self):
        port = self.proxy.url.rsplit(":", 1)[1]
        lines = []
        with open(env("STOWAGE_TEST_S3CFG")) as f:
            for line in f:
                name = line.split("=", 1)[0].strip()
                if name in ("host_base", "host_bucket"):
                    line = f"{name} = 127.0.0.1:{port}\n"
                if name == "multipart_chunk_size_mb":
                    continue  # s3cmd's own default (15 MiB)
                lines.append(line)
        self.s3cfg = os.path.join(self.work, "s3cfg")
        with open(self.s3cfg, "w") as f:
            f.writelines(lines)
        os.chmod(self.s3cfg, 0o600)
        # rclone's remote is in its environment (tool_env); an empty file
        # keeps it from warning that it has none.
        open(os.path.join(self.work, "rclone.conf"), "w").close()

    def plugins_toml(self, plugin):
        path = os.path.join(self.work, f"plugins-{plugin}.toml")
        scheme = "gs" if plugin == "gsutil" else "s3"
        text = f'[schemes]\n{scheme} = "{plugin}"\nfile = "fs"\n\n'
        text += '[plugins.fs]\nlibrary = "stowage_plugin_fs"\n\n'
        text += f'[plugins.{plugin}]\nlibrary = "stowage_plugin_{plugin}"\n[plugins.{plugin}.config]\n'
        if plugin == "s3cmd":
            text += f'config_file = "{self.s3cfg}"\n'
            if self.args.s3cmd_parallelism is not None:
                text += f"parallelism = {self.args.s3cmd_parallelism}\n"
        elif plugin == "aws":
            text += f'config_file = "{env("STOWAGE_TEST_AWS_CONFIG")}"\n'
            text += f'credentials_file = "{env("STOWAGE_TEST_AWS_CREDENTIALS")}"\n'
            text += f'endpoint_url = "{self.proxy.url}"\n'
        elif plugin == "objstore":
            text += f's3_config_file = "{env("STOWAGE_TEST_AWS_CONFIG")}"\n'
            text += f's3_credentials_file = "{env("STOWAGE_TEST_AWS_CREDENTIALS")}"\n'
            text += f's3_endpoint = "{self.proxy.url}"\n'
        elif plugin == "gsutil":
            text += f'boto_config = "{env("STOWAGE_TEST_BOTO_CONFIG")}"\n'
        with open(path, "w") as f:
            f.write(text)
        return path

    def stowage_toml(self, plugin, buckets, tmp):
        path = os.path.join(self.work, f"stowage-{plugin}.toml")
        scheme = "gs" if plugin == "gsutil" else "s3"
        staging = os.path.join(self.work, f"staging-{plugin}")
        os.makedirs(staging, exist_ok=True)
        text = f'label = "bench"\nbackup_destination = "{self.work}/backups"\n'
        text += f'tmp_bucket = "{scheme}://{tmp}"\nstaging_dir = "{staging}"\n'
        for c in COMPONENTS:
            text += f'\n[components.{c}]\nbucket = "{scheme}://{buckets[c]}"\n'
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- the archive -----------------------------------------------------

    def make_archive(self, objects):
        """The tree on disk, then `stowage backup` of it with the fs plugin."""
        src = os.path.join(self.work, "source")
        backup_time = int(time.time()) - 30 * 86400
        for c in COMPONENTS:
            write_tree(os.path.join(src, c), objects[c], backup_time)
        os.makedirs(os.path.join(self.work, "backups"), exist_ok=True)
        cfg = os.path.join(self.work, "stowage-fs.toml")
        with open(cfg, "w") as f:
            f.write(f'label = "bench"\nbackup_destination = "{self.work}/backups"\nstaging_dir = "{self.work}/staging-fs"\n')
            for c in COMPONENTS:
                f.write(f'\n[components.{c}]\nbucket = "file://{src}/{c}"\n')
        plugins = os.path.join(self.work, "plugins-fs.toml")
        with open(plugins, "w") as f:
            f.write('[schemes]\nfile = "fs"\n[plugins.fs]\nlibrary = "stowage_plugin_fs"\n')
        started = time.time()
        run([f"{self.bin}/stowage", "--plugins", plugins, "backup", "--config", cfg], dict(os.environ), self.log_file)
        archives = [f for f in os.listdir(os.path.join(self.work, "backups")) if f.endswith("_backup.tar")]
        assert len(archives) == 1, archives
        self.archive = os.path.join(self.work, "backups", archives[0])
        log(f"archive {archives[0]} ({os.path.getsize(self.archive) / MiB:.0f} MiB) in {time.time() - started:.1f}s")
        shutil.rmtree(src)
        shutil.rmtree(os.path.join(self.work, "staging-fs"), ignore_errors=True)

    def upload_archive(self):
        """`--archive-in-bucket`: the archive into ARCHIVE_BUCKET on moto,
        named as on disk, straight (not through the proxy, so not counted)
        and before any measured run."""
        self.archive_object = os.path.basename(self.archive)
        self.s3.mb(ARCHIVE_BUCKET)
        started = time.time()
        self.s3.upload(ARCHIVE_BUCKET, self.archive_object, self.archive)
        log(f"archive uploaded to s3://{ARCHIVE_BUCKET}/{self.archive_object} in {time.time() - started:.1f}s")

    def remove_archive(self):
        """The archive gone from disk (and from its bucket)."""
        os.remove(self.archive)
        if self.archive_object:
            self.s3.clear(ARCHIVE_BUCKET)
            self.archive_object = None

    def archive_file(self):
        """What `stowage restore --file` reads: the archive's path, or its
        s3:// URL when it is in a bucket."""
        if self.archive_object:
            return f"s3://{ARCHIVE_BUCKET}/{self.archive_object}"
        return self.archive

    def archive_fetched(self, stats):
        """What a run read of the archive in its bucket, from the proxy's
        GETs of it: {"gets": how many, "mib": the bytes their ranges ask for}."""
        path = f"/{ARCHIVE_BUCKET}/{self.archive_object}"
        size = os.path.getsize(self.archive)
        ranges = [r for p, rs in stats.get("gets", {}).items() if urllib.parse.unquote(p) == path for r in rs]
        return {"gets": len(ranges), "mib": round(sum(range_length(r, size) for r in ranges) / MiB, 1)}

    def forget_verdicts(self):
        """The validation verdicts earlier sharded restores left in the
        backup destination removed: every measured run is then a fresh
        job, whose shards wait for each other's verdicts (a re-run that
        found them would not wait)."""
        backups = os.path.join(self.work, "backups")
        for name in os.listdir(backups):
            if name.startswith(VERDICT_PREFIX):
                os.remove(os.path.join(backups, name))

    def extract(self, component, dest):
        """What backup-utility does first: untar the component's tarball."""
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        run(["sh", "-c", f'tar -xOf "$1" "$2.tar.gz" | tar -xzf - -C "$3"', "sh", self.archive, component, dest], dict(os.environ), self.log_file)

    def each_untarred(self, step):
        """step(component, directory) for each component, its tarball
        untarred into the directory first (inside the wall time, as
        backup-utility does) and removed after."""
        for c in COMPONENTS:
            staged = os.path.join(self.work, "extract", c)
            self.extract(c, staged)
            step(c, staged)
            shutil.rmtree(staged)

    # -- the methods ------------------------------------------------------

    def legacy(self, plugin, buckets, tmp):
        e = self.tool_env(plugin)

        def wipe_and_reupload(c, staged):
            bucket, snap = buckets[c], f"{tmp}/{c}.{int(time.time())}/"
            if plugin == "s3cmd":
                s3cmd = ["s3cmd", "-c", self.s3cfg, "--no-progress", "--stop-on-error"]
                # --acl-private: without it s3cmd reads and rewrites each
                # object's ACL around every copy, and moto answers some
                # object ?acl GETs with HTTP 500 (see tests/servers/README.md).
                run(s3cmd + ["--acl-private", "sync", f"s3://{bucket}", f"s3://{snap}"], e, self.log_file)
                run(s3cmd + ["del", "--force", "--recursive", f"s3://{bucket}"], e, self.log_file)
                for d in sorted(os.listdir(staged)):
                    run(s3cmd + ["sync", os.path.join(staged, d), f"s3://{bucket}"], e, self.log_file)
            elif plugin == "aws":
                aws = ["aws", "--only-show-errors"]
                run(aws + ["s3", "sync", f"s3://{bucket}", f"s3://{snap}"], e, self.log_file)
                run(aws + ["s3", "rm", "--recursive", f"s3://{bucket}"], e, self.log_file)
                for d in sorted(os.listdir(staged)):
                    run(aws + ["s3", "sync", os.path.join(staged, d), f"s3://{bucket}/{d}"], e, self.log_file)
            else:
                gs = ["gsutil", "-q", "-m"]
                run(gs + ["rsync", "-r", f"gs://{bucket}", f"gs://{snap}"], e, self.log_file)
                run(gs + ["rm", "-f", "-r", f"gs://{bucket}/**"], e, self.log_file, check=False)  # fails when empty
                for d in sorted(os.listdir(staged)):
                    run(gs + ["rsync", "-r", os.path.join(staged, d), f"gs://{bucket}/{d}"], e, self.log_file)

        self.each_untarred(wipe_and_reupload)
        return {}

    def bare(self, plugin, buckets, tmp):
        e = self.tool_env(plugin)

        def sync(c, staged):
            if plugin == "s3cmd":
                run(["s3cmd", "-c", self.s3cfg, "--no-progress", "sync", "--delete-removed", f"{staged}/", f"s3://{buckets[c]}/"], e, self.log_file)
            elif plugin == "aws":
                run(["aws", "--only-show-errors", "s3", "sync", "--delete", f"{staged}/", f"s3://{buckets[c]}/"], e, self.log_file)
            else:
                run(["gsutil", "-q", "-m", "rsync", "-r", "-c", "-d", staged, f"gs://{buckets[c]}"], e, self.log_file)

        self.each_untarred(sync)
        return {}

    def s5cmd(self, buckets, tmp):
        """`s5cmd sync --delete` of each untarred component (its defaults:
        256 workers, size and mtime compared)."""
        e = self.tool_env("s5cmd")
        self.each_untarred(lambda c, staged: run(
            ["s5cmd", "--endpoint-url", self.proxy.url, "sync", "--delete", f"{staged}/", f"s3://{buckets[c]}/"],
            e, self.log_file))
        return {}

    def rclone(self, buckets, tmp):
        """`rclone sync --checksum` of each untarred component (its defaults:
        4 transfers, 8 checkers, a listing per directory)."""
        e = self.tool_env("rclone")
        self.each_untarred(lambda c, staged: run(
            ["rclone", "sync", "--checksum", f"{staged}/", f"{RCLONE_REMOTE}:{buckets[c]}/"], e, self.log_file))
        return {}

    def stowage(self, plugin, shards, buckets, tmp):
        """`stowage restore` of the archive with `plugin` serving s3:// (gs://);
        with `shards` above 1, that many `restore --shards N` processes at
        once, as the pods of a Kubernetes Indexed Job run them."""
        cmd = [
            f"{self.bin}/stowage", "--plugins", self.plugins_toml(plugin), "--json", "restore",
            "--config", self.stowage_toml(plugin, buckets, tmp), "--file", self.archive_file(), "--yes",
        ]
        self.forget_verdicts()
        if shards == 1:
            processes = [(cmd, self.tool_env(plugin))]
        else:
            processes = [self.shard_process(cmd, plugin, shards, index) for index in range(shards)]
        results = run_sampling_rss(processes, self.log_file)
        for rc, _, _, _ in results:
            if rc != 0:
                raise RuntimeError(f"stowage restore exited {rc}; see {self.log_file}")
        reports = [json.loads(stdout) for _, _, stdout, _ in results]
        components = [c for report in reports for c in report["components"]]
        return {
            "shards": shards,
            "rss_mib": round(max(peak for _, peak, _, _ in results) / 1024, 1),
            "process_rss_mib": [round(peak / 1024, 1) for _, peak, _, _ in results],
            "process_wall_s": [round(seconds, 2) for _, _, _, seconds in results],
            # Each process's own step times (fetch, validate and list, plan).
            "process_steps": [{s["step"]: round(s["seconds"], 2) for s in report.get("steps", [])} for report in reports],
            "uploaded": sum(c["uploaded"] for c in components),
            "deleted": sum(c["deleted"] for c in components),
            "repaired": sum(len((c.get("verification") or {}).get("repaired", [])) for c in components),
            "size_only": sum(len((c.get("verification") or {}).get("size_only", [])) for c in components),
            "snapshot_keys": sum(len(c.get("snapshot_keys", [])) for c in components),
            # How the shards dealt the components out: per component, the
            # shard of each piece (every shard reports the same deal).
            "shard_pieces": reports[0].get("shard_pieces"),
        }

    def shard_process(self, cmd, plugin, shards, index):
        """Shard `index` of `shards`: the restore command with `--shards N`
        and a staging directory of its own, JOB_COMPLETION_INDEX set to the
        index (a pod of the Indexed Job in deploy/kubernetes/)."""
        staging = os.path.join(self.work, f"staging-{plugin}-shard-{index}")
        os.makedirs(staging, exist_ok=True)
        envs = {**self.tool_env(plugin), "JOB_COMPLETION_INDEX": str(index)}
        return cmd + ["--shards", str(shards), "--staging-dir", staging], envs

    def sharded(self, name, plugin):
        """The Stowage contender `name` (with `plugin`) once per shard count
        asked for: `name` for 1, the unsharded restore; `name×N` for N."""
        return {shard_contender(name, n): functools.partial(self.stowage, plugin, n) for n in self.args.shards}

    # -- one plugin -----------------------------------------------------------

    def plugin_available(self, plugin):
        rc = run([f"{self.bin}/stowage", "--plugins", self.plugins_toml(plugin), "plugins"], self.tool_env(plugin), self.log_file, check=False)
        return rc == 0

    def contenders(self, plugin):
        """{method: run(buckets, tmp)} in the order asked for. A plugin's
        stowage method is left out (and said so) when the plugin does not
        load; in the peer run a contender that cannot run stops the bench."""
        if plugin != PEERS:
            methods = [m for m in self.args.methods or METHODS if m != "stowage" or self.plugin_available(plugin)]
            if "stowage" in (self.args.methods or METHODS) and "stowage" not in methods:
                log(f"{plugin}: the stowage plugin does not load (see {self.log_file}); stowage not measured")
            runs = {}
            for m in methods:
                if m == "stowage":
                    runs.update(self.sharded(m, plugin))
                else:
                    runs[m] = functools.partial(getattr(self, m), plugin)
            return runs
        runs = {}
        for m in self.args.methods or PEER_CONTENDERS:
            if m == "legacy":
                runs[m] = functools.partial(self.legacy, "s3cmd")
            elif m in STOWAGE_PLUGINS:
                if not self.plugin_available(m):
                    sys.exit(f"bench: the {m} plugin does not load; see {self.log_file}")
                runs.update(self.sharded(m, m))
            elif m in ("s5cmd", "rclone"):
                if shutil.which(m) is None:
                    sys.exit(f"bench: {m} is not on PATH (scripts/bench installs it)")
                runs[m] = getattr(self, m)
            else:
                sys.exit(f"bench: {m} is not a peer contender ({', '.join(PEER_CONTENDERS)})")
        return runs

    def bench_plugin(self, plugin, objects, n):
        store = self.gcs if plugin == "gsutil" else self.s3
        prefix = f"bench-{plugin}-{n}"
        buckets = {c: f"{prefix}-{c}" for c in COMPONENTS}
        tmp = f"{prefix}-tmp"
        for b in [*buckets.values(), tmp]:
            store.mb(b)
        contenders = self.contenders(plugin)
        expected = {c: {k: (s, md5_hex(content(s, cs))) for k, (s, cs) in objects[c].items()} for c in COMPONENTS}
        drifts = {c: drift(objects[c], self.args.seed + i) for i, c in enumerate(COMPONENTS)}
        counted = plugin != "gsutil"
        for rep in range(1, self.args.runs + 1):
            for method, contender in contenders.items():
                if method == "legacy" and rep > self.args.legacy_runs:
                    continue
                for scenario in self.args.scenarios:
                    store.clear(tmp)
                    if scenario == 1:
                        for b in buckets.values():
                            store.clear(b)
                    if scenario == 2:
                        self.apply_drift(store, buckets, drifts)
                    if scenario in (2, 3) and 1 not in self.args.scenarios:
                        raise SystemExit("scenarios 2 and 3 start from scenario 1's result")
                    if counted:
                        self.proxy.reset()
                    server_pid = os.environ.get("STOWAGE_TEST_GCS_PID" if plugin == "gsutil" else "STOWAGE_TEST_S3_PID")
                    server_before, client_before = server_cpu_s(server_pid), children_cpu_s()
                    started = time.monotonic()
                    load = os.getloadavg()
                    extra = contender(buckets, tmp)
                    wall = time.monotonic() - started
                    client_cpu, server_after = children_cpu_s() - client_before, server_cpu_s(server_pid)
                    server_cpu = server_after - server_before if None not in (server_before, server_after) else None
                    stats = self.proxy.stats() if counted else None
                    if stats and self.archive_object and "shards" in extra:  # a Stowage contender
                        extra["archive_fetched"] = self.archive_fetched(stats)
                    problems = []
                    for c in COMPONENTS:
                        problems += verify(store, buckets[c], expected[c])
                    record = {
                        "plugin": plugin, "objects": n, "scenario": scenario, "method": method, "run": rep,
                        "wall_s": round(wall, 3), "client_cpu_s": round(client_cpu, 2),
                        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
                        "loadavg_before": [round(x, 2) for x in load],
                        "planned": planned_changes(scenario, objects, drifts),
                        "objects_per_bucket": [len(expected[c]) for c in COMPONENTS],
                        "component_buckets": [buckets[c] for c in COMPONENTS],
                        "stats": stats, "problems": len(problems), "wrong": wrong_by_kind(problems),
                        "problem_examples": problems[:5], **extra,
                    }
                    self.records.append(record)
                    log(
                        f"{plugin} run {rep} scenario {scenario} {method}: {wall:.1f}s"
                        + f" (CPU: client {client_cpu:.1f}s" + (f", server {server_cpu:.1f}s)" if server_cpu is not None else ")")
                        + (f", {stats['total']['requests']} requests" if stats else "")
                        + (f", archive fetched in {extra['archive_fetched']['gets']} GETs, {extra['archive_fetched']['mib']} MiB"
                           if "archive_fetched" in extra else "")
                        + (f", rss {extra['rss_mib']} MiB" if "rss_mib" in extra else "")
                        + (f", shards ended at {extra['process_wall_s']} s" if extra.get("shards", 1) > 1 else "")
                        + (f", WRONG {wrong_by_kind(problems)} e.g. {problems[:2]}" if problems else ", verified")
                    )
                    if problems:
                        # Start the next scenario from the backup's state.
                        self.repair(store, buckets, objects)
        for b in [*buckets.values(), tmp]:
            store.clear(b)

    def apply_drift(self, store, buckets, drifts):
        for c in COMPONENTS:
            changed, added, deleted = drifts[c]
            for key, (size, cseed) in {**changed, **added}.items():
                store.put(buckets[c], key, content(size, cseed))
            for key in deleted:
                store.delete(buckets[c], key)

    def repair(self, store, buckets, objects):
        for c in COMPONENTS:
            listing = store.listing(buckets[c])
            for key in listing:
                if key not in objects[c]:
                    store.delete(buckets[c], key)
            for key, (size, cseed) in objects[c].items():
                data = content(size, cseed)
                got = listing.get(key)
                if got is None or got[0] != size or (len(got[1]) == 32 and got[1] != md5_hex(data)):
                    store.put(buckets[c], key, data)


# ---------------------------------------------------------------- report


def uptime():
    """`uptime`'s line: the load on the machine, which other work shares."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem / 1024 / 1024, 1), "kernel": platform.release(), "python": platform.python_version()}


def counts(stats):
    c = stats["classes"]

    def get(name, field="requests"):
        return c.get(name, {}).get(field, 0)

    return {
        "put": get("PUT"),
        "multipart": get("MULTIPART_CREATE"),
        "parts": get("UPLOAD_PART"),
        "copy": get("COPY"),
        "delete": get("DELETE"),
        "multi_delete": get("MULTI_DELETE"),
        "list": get("LIST"),
        "head": get("HEAD"),
        "get": get("GET"),
        "other": get("OTHER"),
        "total": stats["total"]["requests"],
        "mib_up": (get("PUT", "bytes_in") + get("UPLOAD_PART", "bytes_in")) / MiB,
        "mib_down": stats["total"]["bytes_out"] / MiB,
    }


def median(values):
    return statistics.median(values) if values else None


def wrong_cell(cell):
    """The result column: verified, or how the worst run left the bucket."""
    worst = max(cell, key=lambda r: r["problems"])
    if not worst["problems"]:
        return "verified"
    kinds = worst.get("wrong") or {"objects": worst["problems"]}
    return "WRONG: " + ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)


def table(records, plugin, n):
    rows = [r for r in records if r["plugin"] == plugin and r["objects"] == n]
    if not rows:
        return ""
    # A column for the speed-up of N shards when the run has some.
    sharded = any(r.get("shards", 1) > 1 for r in rows)
    # Columns for what was fetched of the archive when it was in a bucket.
    in_bucket = any("archive_fetched" in r for r in rows)
    out = [
        f"#### {plugin}, {n} objects",
        "",
        "| scenario | method | wall s (median) | × legacy | " + ("speed-up over 1 shard | " if sharded else "")
        + "runs | client CPU s | server CPU s | PUT | MP create | parts | COPY | DELETE | multi-DEL | LIST | HEAD | GET | OTHER | requests | MiB up | MiB down | "
        + ("archive GETs | archive MiB | " if in_bucket else "") + "peak RSS MiB | result |",
        "|---|---|--:|--:|" + ("--:|" if sharded else "") + "--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        + ("--:|--:|" if in_bucket else "") + "--:|---|",
    ]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for scenario in sorted({r["scenario"] for r in rows}):
        legacy = {r["run"]: r["wall_s"] for r in rows if r["scenario"] == scenario and r["method"] == "legacy"}
        legacy_median = median(list(legacy.values()))
        for method in methods:
            cell = [r for r in rows if r["scenario"] == scenario and r["method"] == method]
            if not cell:
                continue
            walls = [r["wall_s"] for r in cell]
            ratios = [r["wall_s"] / (legacy.get(r["run"]) or legacy_median) for r in cell] if legacy_median else []
            ratio = f"{median(ratios):.3f}" if ratios and method != "legacy" else ("1" if method == "legacy" else "–")
            if cell[0]["stats"]:
                cs = [counts(r["stats"]) for r in cell]
                col = lambda k, fmt="{:.0f}": fmt.format(median([c[k] for c in cs])) + ("" if len({c[k] for c in cs}) == 1 or k.startswith("mib") else "*")
                count_cells = [col(k) for k in ["put", "multipart", "parts", "copy", "delete", "multi_delete", "list", "head", "get", "other", "total"]]
                count_cells += [col("mib_up", "{:.1f}"), col("mib_down", "{:.1f}")]
            else:
                count_cells = ["n/a"] * 13
            if in_bucket:
                count_cells += archive_fetched_cells(cell)
            rss = f"{median([r['rss_mib'] for r in cell]):.1f}" if "rss_mib" in cell[0] else ""
            cpu = lambda k: f"{median([r[k] for r in cell]):.1f}" if all(r.get(k) is not None for r in cell) else "n/a"
            speedup = f"{shard_speedup(rows, scenario, method)} | " if sharded else ""
            out.append(f"| {scenario} | {method} | {median(walls):.2f} | {ratio} | {speedup}{len(cell)} | {cpu('client_cpu_s')} | {cpu('server_cpu_s')} | "
                       + " | ".join(count_cells) + f" | {rss} | {wrong_cell(cell)} |")
    out.append("")
    if plugin == PEERS:
        out += peer_targets(rows)
    return "\n".join(out)


def archive_fetched_cells(cell):
    """The archive GETs and MiB columns: the medians over the cell's runs,
    or empty for a contender that does not read the archive from its bucket."""
    fetched = [r["archive_fetched"] for r in cell if "archive_fetched" in r]
    if not fetched:
        return ["", ""]
    return [f"{median([f['gets'] for f in fetched]):.0f}", f"{median([f['mib'] for f in fetched]):.1f}"]


def shard_speedup(rows, scenario, method):
    """How many times faster the sharded contender `method` restored than its
    unsharded run in the scenario (the median over runs of the unsharded wall
    of the same run / the sharded wall); empty for what is not Stowage."""
    cell = [r for r in rows if r["scenario"] == scenario and r["method"] == method]
    if "shards" not in cell[0]:
        return ""
    unsharded = {r["run"]: r["wall_s"] for r in rows
                 if r["scenario"] == scenario and r["method"] == unsharded_contender(method) and r["shards"] == 1}
    speedups = [unsharded[r["run"]] / r["wall_s"] for r in cell if r["run"] in unsharded]
    return f"{median(speedups):.2f}" if speedups else "–"


def list_pages(objects_per_bucket):
    """LIST requests one listing of every bucket takes at 1,000 keys a page."""
    return sum(-(-k // 1000) for k in objects_per_bucket)


def peer_targets(rows, native="objstore"):
    """Issue 14's targets for the native plugin, from the medians of the
    peer run: each as measured, and met or not."""
    def cell(scenario, method):
        return [r for r in rows if r["scenario"] == scenario and r["method"] == method]

    def wall(scenario, method):
        return median([r["wall_s"] for r in cell(scenario, method)])

    if not cell(1, native) and not cell(3, native):
        return []
    out = ["Targets (native = %s, medians):" % native, "", "| target | measured | met |", "|---|---|---|"]
    # Peers, not Stowage's own sharded runs.
    others = [m for m in dict.fromkeys(r["method"] for r in rows)
              if m not in ("legacy", native) and unsharded_contender(m) == m]
    if cell(1, native) and others:
        fastest = min(others, key=lambda m: wall(1, m))
        out.append(f"| scenario 1 wall ≤ the fastest peer's | {native} {wall(1, native):.2f} s, fastest peer {fastest} {wall(1, fastest):.2f} s "
                   f"(× {wall(1, native) / wall(1, fastest):.2f}) | {'yes' if wall(1, native) <= wall(1, fastest) else 'no'} |")
    for scenario, factor in ((2, 0.05), (3, 0.02)):
        if cell(scenario, native) and cell(scenario, "legacy"):
            ratio = wall(scenario, native) / wall(scenario, "legacy")
            out.append(f"| scenario {scenario} wall ≤ {factor} × legacy | {wall(scenario, native):.2f} s / {wall(scenario, 'legacy'):.2f} s = {ratio:.3f} "
                       f"| {'yes' if ratio <= factor else 'no'} |")
    if cell(2, native):
        right = [m for m in others if cell(2, m) and not any(r["problems"] for r in cell(2, m))]
        slower = [m for m in right if wall(2, native) > wall(2, m)]
        out.append(f"| scenario 2 wall ≤ every peer that gets the bucket right | {native} {wall(2, native):.2f} s; "
                   + ", ".join(f"{m} {wall(2, m):.2f} s" for m in right) + f" | {'yes' if not slower else 'no (' + ', '.join(slower) + ' faster)'} |")
    for scenario in sorted({r["scenario"] for r in cell_rows(rows, native)}):
        for r in cell(scenario, native):
            if r["stats"] is None:
                continue
            c, planned = counts(r["stats"]), r["planned"]
            into = [r["stats"].get("buckets", {}).get(b, {}) for b in r["component_buckets"]]
            put, multipart = (sum(b.get(k, 0) for b in into) for k in ("PUT", "MULTIPART_CREATE"))
            out.append(f"| scenario {scenario} run {r['run']}: PUTs = changed + added | into the component buckets {put} PUT + {multipart} multipart "
                       f"= {put + multipart}; planned {planned['uploads']} | {'yes' if put + multipart == planned['uploads'] else 'no'} |")
            pages = list_pages(r.get("objects_per_bucket", []))
            if pages:
                out.append(f"| scenario {scenario} run {r['run']}: LIST ≈ objects / 1,000 per listing | {c['list']} LIST = "
                           f"{c['list'] / pages:.1f} listings of both buckets ({pages} pages each) | see text |")
    rss = [r for r in cell_rows(rows, native) if r.get("objects", 0) >= 100_000 and "rss_mib" in r]
    for r in rss:
        out.append(f"| peak RSS ≤ 100 MiB at {r['objects']:,} objects, scenario {r['scenario']} | {r['rss_mib']:.1f} MiB | {'yes' if r['rss_mib'] <= 100 else 'no'} |")
    out.append("")
    return out


def cell_rows(rows, method):
    return [r for r in rows if r["method"] == method]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the backup (default 10000)")
    parser.add_argument("--gsutil-objects", type=int, default=None, help="objects for gsutil on the GCS emulator (default: --objects / 5)")
    parser.add_argument("--plugins", default="s3cmd,aws,gsutil",
                        help="s3cmd, aws, gsutil (each: legacy, bare and stowage with that tool), or peers: Stowage with "
                             "objstore, s3cmd and aws, s5cmd, rclone and legacy (s3cmd) side by side on one bucket set")
    parser.add_argument("--methods", default=None,
                        help="default legacy,bare,stowage; for peers: " + ",".join(PEER_CONTENDERS))
    parser.add_argument("--scenarios", default="1,2,3")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of bare and stowage (default 3)")
    parser.add_argument("--legacy-runs", type=int, default=None, help="repetitions of legacy (default: --runs)")
    parser.add_argument("--s3cmd-parallelism", type=int, default=None, help="the s3cmd plugin's parallelism setting (default: the plugin's)")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="delay the proxy adds before forwarding every request (S3 plugins only; a stand-in for "
                             "the round trip to a remote S3; default 0). Preparing and checking the buckets bypass the proxy.")
    parser.add_argument("--shards", default="1", metavar="N,N,...",
                        help="run each Stowage contender once per N: N > 1 starts N `restore --shards N` processes at "
                             "once (JOB_COMPLETION_INDEX 0..N-1, a staging directory each), named <contender>×N; "
                             "1 is the unsharded restore (default 1)")
    parser.add_argument("--archive-in-bucket", action="store_true",
                        help="upload the archive once into a bucket on the S3 server (not counted, before the measured runs) "
                             "and restore it from there with every Stowage contender (--file s3://...): unsharded it is "
                             "downloaded whole, shards with a plugin that reads ranges fetch their part; S3 plugins only")
    parser.add_argument("--rss-fs", default=None, metavar="N,N,...",
                        help="instead of the benchmark: Stowage's peak RSS for a backup, a full restore and a no-op "
                             "restore of N small objects on the fs plugin (no servers; run bench.py directly)")
    parser.add_argument("--rss-shallow", action="store_true",
                        help="with --rss-fs: keys as long as GitLab's, but only a project's path is folders "
                             "(@hashed/<2>/<2>/<sha256>/ or <2>/<2>/<sha256>/); the rest of the key is joined by '-', "
                             "so an object adds no folder of its own (GitLab's layout makes ~3 folders an object: "
                             "a tree of 1,000,000 then passes a tmpfs's inode limit)")
    parser.add_argument("--rss-backups", default=None, metavar="DIR",
                        help="with --rss-fs: store the archives in a new folder below DIR (another disk than the "
                             "trees' TMPDIR, e.g. when TMPDIR is a tmpfs); removed afterwards")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", default="bench-results", help="directory for results.json and results.md")
    args = parser.parse_args()
    args.plugins = [p for p in args.plugins.split(",") if p]
    args.methods = [m for m in (args.methods or "").split(",") if m]
    args.scenarios = [int(s) for s in args.scenarios.split(",") if s]
    args.shards = [int(n) for n in args.shards.split(",") if n]
    args.legacy_runs = args.runs if args.legacy_runs is None else args.legacy_runs
    gs_n = args.gsutil_objects or max(100, args.objects // 5)
    if args.rss_fs:
        return rss_fs(args)
    if args.archive_in_bucket and "gsutil" in args.plugins:
        sys.exit("bench: --archive-in-bucket puts the archive on the S3 server; gsutil's gs:// cannot read it")

    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="stowage-bench.")
    bench = Bench(args, work)
    bench.write_configs()
    bench.proxy.set_latency(args.latency_ms)
    if args.latency_ms:
        log(f"proxy: {args.latency_ms} ms before every request")
    started = time.time()
    bench.uptime["before"] = uptime()
    try:
        for plugin in args.plugins:
            n = gs_n if plugin == "gsutil" else args.objects
            if plugin == "gsutil" and bench.gcs is None:
                bench.gcs = GcsStore()
            objects = generate(n, args.seed)
            total = sum(s for c in COMPONENTS for s, _ in objects[c].values())
            log(f"{plugin}: {n} objects, {total / MiB:.0f} MiB")
            bench.make_archive(objects)
            if args.archive_in_bucket:
                bench.upload_archive()
            bench.bench_plugin(plugin, objects, n)
            bench.remove_archive()
            write_results(args, bench, started)
    finally:
        bench.uptime["after"] = uptime()
        write_results(args, bench, started)
        if os.path.exists(bench.log_file):
            shutil.copy(bench.log_file, os.path.join(args.out, "tools.log"))
        shutil.rmtree(work, ignore_errors=True)


def rss_fs(args):
    """Peak RSS of `stowage` itself against object count, on the fs plugin
    (file:// buckets: no server, so it is quick): per count, a backup of small
    objects, a full restore into empty directory buckets, then a no-op restore.
    Runs on its own (no proxy or servers needed)."""
    bin_dir = os.environ.get("STOWAGE_BENCH_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release")
    os.makedirs(args.out, exist_ok=True)
    records = []
    for n in [int(x) for x in args.rss_fs.split(",") if x]:
        work = tempfile.mkdtemp(prefix="stowage-rss.")
        backups = tempfile.mkdtemp(prefix="stowage-rss-backups.", dir=args.rss_backups) if args.rss_backups \
            else os.path.join(work, "backups")
        log_file = os.path.join(work, "tools.log")
        try:
            objects = generate(n, args.seed)
            # Small objects only (1-4 KiB, keys as generate() makes them):
            # the point is per-object memory, not bytes.
            objects = {c: {k: (1024 + cs % 3072, cs) for k, (_, cs) in objs.items()} for c, objs in objects.items()}
            if args.rss_shallow:
                objects = {c: {shallow_key(k): v for k, v in objs.items()} for c, objs in objects.items()}
            src, dst = os.path.join(work, "source"), os.path.join(work, "restored")
            for c in COMPONENTS:
                write_tree(os.path.join(src, c), objects[c], int(time.time()) - 30 * 86400)
                os.makedirs(os.path.join(dst, c))
            os.makedirs(os.path.join(work, "tmp"))
            plugins = os.path.join(work, "plugins.toml")
            with open(plugins, "w") as f:
                f.write('[schemes]\nfile = "fs"\n[plugins.fs]\nlibrary = "stowage_plugin_fs"\n')

            def config(name, root):
                path = os.path.join(work, name)
                with open(path, "w") as f:
                    f.write(f'label = "rss"\nbackup_destination = "{backups}"\n'
                            f'tmp_bucket = "file://{work}/tmp"\nstaging_dir = "{work}/staging"\n')
                    for c in COMPONENTS:
                        f.write(f'\n[components.{c}]\nbucket = "file://{root}/{c}"\n')
                return path

            steps = [
                ("backup", [f"{bin_dir}/stowage", "--plugins", plugins, "--json", "backup", "--config", config("backup.toml", src)]),
            ]
            restore_cfg = config("restore.toml", dst)
            for step in ("restore (full, empty buckets)", "restore (no-op)"):
                steps.append((step, None))
            for step, cmd in steps:
                if cmd is None:
                    archive = [f for f in os.listdir(backups) if f.endswith("_backup.tar")][0]
                    cmd = [f"{bin_dir}/stowage", "--plugins", plugins, "--json", "restore", "--config", restore_cfg,
                           "--file", os.path.join(backups, archive), "--yes"]
                started, cpu_before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
                [(rc, peak_kib, stdout, _)] = run_sampling_rss([(cmd, dict(os.environ))], log_file)
                wall, cpu_after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
                # CPU of stowage and the processes it waited for: unlike the
                # wall time, it does not depend on what else the machine runs.
                cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
                if rc != 0:
                    raise RuntimeError(f"{step} exited {rc}; see {log_file}")
                report = json.loads(stdout) if step != "backup" else {}
                uploaded = sum(c["uploaded"] for c in report.get("components", []))
                deleted = sum(c["deleted"] for c in report.get("components", []))
                records.append({"objects": n, "step": step, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rss_mib": round(peak_kib / 1024, 1),
                                "uploaded": uploaded, "deleted": deleted})
                log(f"rss-fs {n} {step}: {wall:.1f}s wall, {cpu:.1f}s CPU, peak RSS {peak_kib / 1024:.1f} MiB"
                    + (f", uploaded {uploaded}, deleted {deleted}" if step != "backup" else ""))
                if step == "backup":
                    # The restores need neither the source trees nor the
                    # backup's staging mirror of them (each ~1.2 GB per
                    # 100,000 objects: a directory chain per key).
                    shutil.rmtree(src, ignore_errors=True)
                    shutil.rmtree(os.path.join(work, "staging", "backup", "mirror"), ignore_errors=True)
            got = sum(len(files) for c in COMPONENTS for _, _, files in os.walk(os.path.join(dst, c)))
            if got != n:
                log(f"rss-fs {n}: WRONG: {got} files restored")
                records[-1]["problems"] = n - got
        finally:
            shutil.copy(log_file, os.path.join(args.out, f"tools-rss-{n}.log")) if os.path.exists(log_file) else None
            shutil.rmtree(work, ignore_errors=True)
            if args.rss_backups:
                shutil.rmtree(backups, ignore_errors=True)
        with open(os.path.join(args.out, "rss.json"), "w") as f:
            json.dump({"machine": machine(), "seed": args.seed, "records": records}, f, indent=1)
    md = ["| objects | step | wall s | CPU s | peak RSS MiB | uploaded | deleted |", "|--:|---|--:|--:|--:|--:|--:|"]
    md += [f"| {r['objects']} | {r['step']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['rss_mib']:.1f} | {r['uploaded'] if r['step'] != 'backup' else ''} | {r['deleted'] if r['step'] != 'backup' else ''} |" for r in records]
    with open(os.path.join(args.out, "rss.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def write_results(args, bench, started):
    result = {
        "command": " ".join(sys.argv[1:]),
        "machine": machine(),
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "runs": args.runs,
        "legacy_runs": args.legacy_runs,
        "duration_s": round(time.time() - started, 1),
        "uptime": bench.uptime,
        "records": bench.records,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    m = result["machine"]
    md = [
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"bench took {result['duration_s'] / 60:.1f} min; seed {args.seed}"
        + (f"; proxy latency {args.latency_ms} ms per request (S3 plugins)." if args.latency_ms else "."),
        "",
        *[f"uptime {when}: {line}" for when, line in result["uptime"].items()],
        "",
    ]
    for plugin in args.plugins:
        for n in sorted({r["objects"] for r in bench.records if r["plugin"] == plugin}):
            md.append(table(bench.records, plugin, n))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
