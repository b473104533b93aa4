//! # stowage-test-proxy — count and break S3 requests
//!
//! An HTTP/1.1 reverse proxy on 127.0.0.1 in front of an S3 test server
//! (moto). It classifies every request ([`Class`]: PUT, UPLOAD_PART, COPY,
//! MULTI_DELETE, LIST, GET, HEAD, DELETE, ...), counts requests and body
//! bytes each way per class (and requests per bucket and class, and the
//! byte range of every GET, for path-style requests), and can inject faults ([`FaultConfig`]: 503
//! SlowDown, 500 InternalError, uploads reset mid-body, delays) drawn from
//! a seeded generator, for every request or only those of some classes
//! and paths. Bodies stream through; connections are kept alive.
//!
//! The Host header is forwarded unchanged (clients sign it; moto does not
//! check signatures), so the proxy is transparent to SigV2/SigV4 clients
//! configured with the proxy's address as their endpoint.
//!
//! Admin endpoints, on a path no S3 client uses (they are not counted):
//!
//! | request | answer |
//! |---|---|
//! | `GET /__proxy/stats` | the counters, JSON ([`Stats`]) |
//! | `POST /__proxy/reset` | the counters before zeroing them, JSON |
//! | `GET /__proxy/faults` | the fault config in force, JSON |
//! | `POST /__proxy/faults` | sets a new fault config (JSON body; `{}` turns faults off) |
//!
//! In-process use (a test): `let proxy = Proxy::start("http://127.0.0.1:9000")?;`
//! then point the client at `proxy.url()`, and read `proxy.stats()`.

pub mod classify;
pub mod etags;
pub mod faults;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::net::TcpListener;

pub use classify::{classify, Class};
pub use faults::{Decision, FaultConfig, FaultState};

/// Counters of one class.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    errors: AtomicU64,
}

/// Counts of one class, as the stats report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Requests received.
    pub requests: u64,
    /// Request body bytes received from clients.
    pub bytes_in: u64,
    /// Response body bytes sent to clients.
    pub bytes_out: u64,
    /// Answers with status 400 or above (injected ones included).
    pub errors: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.requests += other.requests;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.errors += other.errors;
    }
}

/// Faults injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InjectedFaults {
    /// Requests answered 503 SlowDown.
    pub slowdown: u64,
    /// Requests answered 500 InternalError.
    pub internal_error: u64,
    /// Uploads whose connection was reset mid-body.
    pub reset_upload: u64,
    /// Requests delayed.
    pub delayed: u64,
}

/// A snapshot of the counters (the JSON of `GET /__proxy/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Per class, by name; classes without requests are left out.
    pub classes: BTreeMap<String, Counts>,
    /// All classes together.
    pub total: Counts,
    /// Requests per bucket (the first path segment), per class name.
    #[serde(default)]
    pub buckets: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every GET of an object, by path: the `Range` header of each (`-`
    /// for a whole object), in the order they came.
    #[serde(default)]
    pub gets: BTreeMap<String, Vec<String>>,
    /// Faults injected.
    pub faults: InjectedFaults,
}

impl Stats {
    /// The counts of `class` (zero when it had no request).
    pub fn class(&self, class: Class) -> Counts {
        self.classes.get(class.name()).copied().unwrap_or_default()
    }
}

/// What every connection shares: counters, faults, the upstream client.
struct Shared {
    upstream: String,
    counters: [Counters; Class::ALL.len()],
    faults: Mutex<FaultState>,
    slowdown: AtomicU64,
    internal_error: AtomicU64,
    reset_upload: AtomicU64,
    delayed: AtomicU64,
    /// Requests per bucket and class, as [`Stats::buckets`].
    buckets: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// GETs by path, as [`Stats::gets`].
    gets: Mutex<BTreeMap<String, Vec<String>>>,
    client: Client<HttpConnector, Counted<Incoming>>,
}

impl Shared {
    fn new(upstream: &str) -> Shared {
        let upstream = upstream.trim_end_matches('/');
        let upstream = if upstream.contains("://") {
            upstream.to_string()
        } else {
            format!("http://{upstream}")
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Shared {
            upstream,
            counters: Default::default(),
            faults: Mutex::new(FaultState::default()),
            slowdown: AtomicU64::new(0),
            internal_error: AtomicU64::new(0),
            reset_upload: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            buckets: Mutex::default(),
            gets: Mutex::default(),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    fn counters(&self, class: Class) -> &Counters {
        &self.counters[Class::ALL
            .iter()
            .position(|c| *c == class)
            .expect("every class is in ALL")]
    }

    fn count_bucket_request(&self, path: &str, class: Class) {
        let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if bucket.is_empty() {
            return;
        }
        let mut buckets = self.buckets.lock().expect("no panics while held");
        *buckets
            .entry(bucket.to_string())
            .or_default()
            .entry(class.name().to_string())
            .or_default() += 1;
    }

    fn record_get(&self, path: &str, range: Option<&HeaderValue>) {
        let range = range
            .and_then(|r| r.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let mut gets = self.gets.lock().expect("no panics while held");
        gets.entry(path.to_string()).or_default().push(range);
    }

    fn stats(&self, reset: bool) -> Stats {
        let take = |a: &AtomicU64| {
            if reset {
                a.swap(0, Ordering::SeqCst)
            } else {
                a.load(Ordering::SeqCst)
            }
        };
        let mut stats = Stats::default();
        for class in Class::ALL {
            let c = self.counters(class);
            let counts = Counts {
                requests: take(&c.requests),
                bytes_in: take(&c.bytes_in),
                bytes_out: take(&c.bytes_out),
                errors: take(&c.errors),
            };
            if counts != Counts::default() {
                stats.total += counts;
                stats.classes.insert(class.name().to_string(), counts);
            }
        }
        let mut buckets = self.buckets.lock().expect("no panics while held");
        stats.buckets = if reset {
            std::mem::take(&mut *buckets)
        } else {
            buckets.clone()
        };
        let mut gets = self.gets.lock().expect("no panics while held");
        stats.gets = if reset {
            std::mem::take(&mut *gets)
        } else {
            gets.clone()
        };
        stats.faults = InjectedFaults {
            slowdown: take(&self.slowdown),
            internal_error: take(&self.internal_error),
            reset_upload: take(&self.reset_upload),
            delayed: take(&self.delayed),
        };
        stats
    }

    fn set_faults(&self, config: FaultConfig) -> Result<(), String> {
        let state = FaultState::new(config)?;
        *self.faults.lock().expect("no panics while held") = state;
        Ok(())
    }
}

/// A body that adds the bytes of every data frame to a counter.
pub struct Counted<B> {
    inner: B,
    counter: Arc<CounterRef>,
}

/// Which counter a [`Counted`] body adds to.
struct CounterRef {
    shared: Arc<Shared>,
    class: Class,
    incoming: bool,
}

impl CounterRef {
    fn add(&self, n: u64) {
        let c = self.shared.counters(self.class);
        let target = if self.incoming {
            &c.bytes_in
        } else {
            &c.bytes_out
        };
        target.fetch_add(n, Ordering::Relaxed);
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.add(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type ProxyBody = Either<Counted<Incoming>, Full<Bytes>>;

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a valid content type"),
    );
    response
}

fn json<T: Serialize>(value: &T) -> Response<ProxyBody> {
    full(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec_pretty(value).expect("stats serialise"),
    )
}

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // The proxy reads the body itself (hyper answers 100 Continue when it does).
    "expect",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Serves the admin endpoints.
async fn admin(shared: &Shared, request: Request<Incoming>) -> Response<ProxyBody> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    match (method.as_str(), path.as_str()) {
        ("GET", "/__proxy/stats") => json(&shared.stats(false)),
        ("POST", "/__proxy/reset") => json(&shared.stats(true)),
        ("GET", "/__proxy/faults") => {
            json(shared.faults.lock().expect("no panics while held").config())
        }
        ("POST", "/__proxy/faults") => {
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return full(StatusCode::BAD_REQUEST, "text/plain", e.to_string()),
            };
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                Bytes::from_static(b"{}")
            } else {
                body
            };
            let config = match serde_json::from_slice::<FaultConfig>(&body) {
                Ok(config) => config,
                Err(e) => return full(StatusCode::BAD_REQUEST, "text/plain", e.to_string()),
            };
            match shared.set_faults(config.clone()) {
                Ok(()) => json(&config),
                Err(e) => full(StatusCode::BAD_REQUEST, "text/plain", e),
            }
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin endpoints: GET /__proxy/stats, POST /__proxy/reset, GET|POST /__proxy/faults\n",
        ),
    }
}

/// Why a connection was dropped on purpose (a reset upload).
#[derive(Debug)]
struct ResetOnPurpose;

impl std::fmt::Display for ResetOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetOnPurpose {}

/// Handles one request: admin, injected fault, or forwarded.
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ResetOnPurpose> {
    if request.uri().path().starts_with("/__proxy/") {
        return Ok(admin(&shared, request).await);
    }
    let class = classify(
        request.method().as_str(),
        request.uri().path(),
        request.uri().query().unwrap_or(""),
        request.headers().contains_key("x-amz-copy-source"),
    );
    let counters = shared.counters(class);
    counters.requests.fetch_add(1, Ordering::Relaxed);
    shared.count_bucket_request(request.uri().path(), class);
    if class == Class::Get {
        shared.record_get(request.uri().path(), request.headers().get("range"));
    }
    let has_body = !request.body().is_end_stream();
    let path = request.uri().path();
    let (decision, delay, opaque_etags) = {
        let mut faults = shared.faults.lock().expect("no panics while held");
        (
            faults.decide(class, path, has_body),
            faults.delay_ms(class, path),
            faults.opaque_etags(),
        )
    };
    if delay > 0 {
        shared.delayed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let resource = request.uri().path().to_string();
    let injected_error = |status, code: &str, message: &str| {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        let body = faults::s3_error_body(code, message, &resource);
        counters
            .bytes_out
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        full(status, "application/xml", body)
    };
    match decision {
        Decision::SlowDown => {
            shared.slowdown.fetch_add(1, Ordering::Relaxed);
            return Ok(injected_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            ));
        }
        Decision::InternalError => {
            shared.internal_error.fetch_add(1, Ordering::Relaxed);
            return Ok(injected_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ));
        }
        Decision::ResetUpload => {
            shared.reset_upload.fetch_add(1, Ordering::Relaxed);
            counters.errors.fetch_add(1, Ordering::Relaxed);
            // Read about half of the body, then drop the connection
            // without an answer: the upload never reaches the server.
            let length = request.body().size_hint().exact().unwrap_or(0);
            let mut body = request.into_body();
            let mut read = 0u64;
            while read == 0 || read < length / 2 {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    _ => break,
                }
            }
            counters.bytes_in.fetch_add(read, Ordering::Relaxed);
            return Err(ResetOnPurpose);
        }
        Decision::Forward => {}
    }

    let (parts, body) = request.into_parts();
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut forwarded = Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            forwarded = forwarded.header(name, value);
        }
    }
    let body = Counted {
        inner: body,
        counter: Arc::new(CounterRef {
            shared: shared.clone(),
            class,
            incoming: true,
        }),
    };
    let forwarded = match forwarded.body(body) {
        Ok(r) => r,
        Err(e) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return Ok(full(StatusCode::BAD_REQUEST, "text/plain", e.to_string()));
        }
    };
    match shared.client.request(forwarded).await {
        Ok(response) => {
            if response.status().as_u16() >= 400 {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(*name);
            }
            if opaque_etags {
                return Ok(with_opaque_etags(parts, body, class, counters).await);
            }
            let body = Counted {
                inner: body,
                counter: Arc::new(CounterRef {
                    shared: shared.clone(),
                    class,
                    incoming: false,
                }),
            };
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(e) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            Ok(full(
                StatusCode::BAD_GATEWAY,
                "text/plain",
                format!(
                    "stowage-test-proxy: upstream {} failed: {e}",
                    shared.upstream
                ),
            ))
        }
    }
}

/// An upstream answer as an SSE-KMS bucket would give it (see [`etags`]):
/// the `ETag` header and, in listings and copy results, the ETags in the
/// XML rewritten; the encryption header added.
async fn with_opaque_etags(
    mut parts: hyper::http::response::Parts,
    body: Incoming,
    class: Class,
    counters: &Counters,
) -> Response<ProxyBody> {
    let etag = parts.headers.get("etag").and_then(|v| v.to_str().ok());
    if let Some(Ok(value)) = etag
        .and_then(etags::opaque_etag_header)
        .map(|e| HeaderValue::from_str(&e))
    {
        parts.headers.insert("etag", value);
    }
    parts.headers.insert(
        etags::ENCRYPTION_HEADER,
        HeaderValue::from_static("aws:kms"),
    );
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return full(StatusCode::BAD_GATEWAY, "text/plain", e.to_string());
        }
    };
    let bytes = match class {
        Class::List | Class::Copy | Class::MultipartComplete => {
            Bytes::from(etags::opaque_etags_in_xml(&bytes))
        }
        _ => bytes,
    };
    counters
        .bytes_out
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Response::from_parts(parts, Either::Right(Full::new(bytes)))
}

/// Accepts connections on `listener` and serves them until `shutdown`
/// resolves.
async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            // Errors here are clients going away, or resets on purpose.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A running proxy with its own runtime thread; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 at a free port, forwarding to `upstream`
    /// (`http://host:port` or `host:port`).
    pub fn start(upstream: &str) -> Result<Proxy> {
        Proxy::start_on("127.0.0.1:0".parse().expect("a valid address"), upstream)
    }

    /// Starts a proxy listening on `listen`, forwarding to `upstream`.
    pub fn start_on(listen: SocketAddr, upstream: &str) -> Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stowage-test-proxy")
            .enable_all()
            .build()
            .context("cannot start the proxy's runtime")?;
        let std_listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared::new(upstream));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("stowage-test-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("stowage-test-proxy: {e}");
                            return;
                        }
                    };
                    serve(listener, serving, async {
                        let _ = rx.await;
                    })
                    .await;
                });
            })?;
        Ok(Proxy {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats(false)
    }

    /// The counters now, zeroing them.
    pub fn reset(&self) -> Stats {
        self.shared.stats(true)
    }

    /// Sets the faults to inject (the default config turns them off).
    pub fn set_faults(&self, config: FaultConfig) -> Result<()> {
        self.shared.set_faults(config).map_err(|e| anyhow!(e))
    }

    /// Serves until the process is stopped (for the binary).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
