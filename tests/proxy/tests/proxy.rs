//! The proxy in front of a tiny upstream: classification, byte counts,
//! admin endpoints and each kind of fault.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stowage_test_proxy::{Class, FaultConfig, Proxy, Stats};

/// What the upstream saw: method, path and query, body length.
type Seen = Arc<Mutex<Vec<(String, String, usize)>>>;

/// Size of every GET answer of the upstream.
const GET_BODY: usize = 3000;

/// Starts an upstream that records each request and answers 200: GETs with
/// [`GET_BODY`] bytes, the rest with `ok`.
fn upstream(rt: &tokio::runtime::Runtime) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let record = seen.clone();
    rt.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let method = request.method().to_string();
                        let target = request.uri().to_string();
                        let body = request.into_body().collect().await?.to_bytes();
                        record
                            .lock()
                            .unwrap()
                            .push((method.clone(), target, body.len()));
                        let answer = if method == "GET" {
                            Bytes::from(vec![b'x'; GET_BODY])
                        } else {
                            Bytes::from_static(b"ok")
                        };
                        Ok::<_, hyper::Error>(Response::new(Full::new(answer)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

struct Setup {
    rt: tokio::runtime::Runtime,
    proxy: Proxy,
    seen: Seen,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, seen) = upstream(&rt);
    let proxy = Proxy::start(&format!("http://{addr}")).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    Setup {
        rt,
        proxy,
        seen,
        client,
    }
}

/// One response: status and body, or the error text.
type Answer = Result<(u16, String), String>;

impl Setup {
    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{target}", self.proxy.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        self.rt.block_on(async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        })
    }

    fn status(&self, method: &str, target: &str) -> u16 {
        self.send(method, target, &[], Vec::new()).unwrap().0
    }

    fn faults(&self, json: &str) {
        let (status, body) = self
            .send("POST", "/__proxy/faults", &[], json.as_bytes().to_vec())
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }

    fn http_stats(&self) -> Stats {
        let (status, body) = self.send("GET", "/__proxy/stats", &[], Vec::new()).unwrap();
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }
}

/// Method, target, headers, body size, expected class.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], usize, Class);

#[test]
fn requests_are_counted_by_class_with_bytes_each_way() {
    let s = setup();
    let copy = [("x-amz-copy-source", "/b/src")];
    let cases: &[Case] = &[
        ("PUT", "/b/dir/k%20x", &[], 1000, Class::Put),
        (
            "PUT",
            "/b/k?partNumber=1&uploadId=u",
            &[],
            700,
            Class::UploadPart,
        ),
        ("PUT", "/b/k2", &copy, 0, Class::Copy),
        ("POST", "/b/k?uploads", &[], 0, Class::MultipartCreate),
        ("POST", "/b/k?uploadId=u", &[], 50, Class::MultipartComplete),
        ("POST", "/b?delete", &[], 120, Class::MultiDelete),
        ("GET", "/b?list-type=2&prefix=a", &[], 0, Class::List),
        ("GET", "/b/k", &[], 0, Class::Get),
        ("HEAD", "/b/k", &[], 0, Class::Head),
        ("DELETE", "/b/k", &[], 0, Class::Delete),
        ("PUT", "/b", &[], 0, Class::Other),
    ];
    for (method, target, headers, size, _) in cases {
        let (status, _) = s.send(method, target, headers, vec![7u8; *size]).unwrap();
        assert_eq!(status, 200, "{method} {target}");
    }
    let stats = s.http_stats();
    for (method, target, _, size, class) in cases {
        let counts = stats.class(*class);
        assert_eq!(
            counts.requests, 1,
            "{method} {target} as {class:?}: {stats:?}"
        );
        assert_eq!(counts.bytes_in, *size as u64, "{method} {target}");
        let out = match *method {
            "GET" => GET_BODY as u64,
            "HEAD" => 0,
            _ => 2,
        };
        assert_eq!(counts.bytes_out, out, "{method} {target}");
    }
    assert_eq!(stats.total.requests, cases.len() as u64);
    assert_eq!(stats.total.errors, 0);
    // Every case is in bucket b, each class counted there as often as above.
    assert_eq!(stats.buckets.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(stats.buckets["b"]["PUT"], 1);
    assert_eq!(stats.buckets["b"].values().sum::<u64>(), cases.len() as u64);
    // The upstream got every request with its query and whole body.
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), cases.len());
    assert_eq!(seen[0], ("PUT".into(), "/b/dir/k%20x".into(), 1000));
    assert_eq!(seen[6].1, "/b?list-type=2&prefix=a");

    // Reset answers the counts before zeroing them.
    let (_, body) = s.send("POST", "/__proxy/reset", &[], Vec::new()).unwrap();
    let before: Stats = serde_json::from_str(&body).unwrap();
    assert_eq!(before.total.requests, cases.len() as u64);
    assert_eq!(s.proxy.stats(), Stats::default());
}

#[test]
fn large_uploads_stream_through() {
    let s = setup();
    let size = 20 << 20;
    let (status, _) = s.send("PUT", "/b/big", &[], vec![1u8; size]).unwrap();
    assert_eq!(status, 200);
    assert_eq!(s.proxy.stats().class(Class::Put).bytes_in, size as u64);
    assert_eq!(s.seen.lock().unwrap()[0].2, size);
}

#[test]
fn slowdown_answers_503_with_an_s3_error_and_forwards_nothing() {
    let s = setup();
    s.faults(r#"{"slowdown": 1.0, "classes": ["GET"]}"#);
    let (status, body) = s.send("GET", "/b/k", &[], Vec::new()).unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("<Code>SlowDown</Code>"), "{body}");
    assert!(body.contains("<Resource>/b/k</Resource>"), "{body}");
    // Other classes pass.
    assert_eq!(s.status("HEAD", "/b/k"), 200);
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "HEAD");
    let stats = s.proxy.stats();
    assert_eq!(stats.faults.slowdown, 1);
    assert_eq!(stats.class(Class::Get).errors, 1);
}

#[test]
fn internal_error_answers_500() {
    let s = setup();
    s.faults(r#"{"internal_error": 1.0}"#);
    let (status, body) = s.send("PUT", "/b/k", &[], vec![1; 10]).unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("<Code>InternalError</Code>"), "{body}");
    assert!(s.seen.lock().unwrap().is_empty());
    assert_eq!(s.proxy.stats().faults.internal_error, 1);
    // `{}` turns the faults off again.
    s.faults("{}");
    assert_eq!(s.status("PUT", "/b/k"), 200);
}

#[test]
fn a_reset_upload_drops_the_connection_mid_body() {
    let s = setup();
    s.faults(r#"{"reset_upload": 1.0}"#);
    let size = 4 << 20;
    let answer = s.send("PUT", "/b/big", &[], vec![1u8; size]);
    assert!(answer.is_err(), "the client got an answer: {answer:?}");
    let stats = s.proxy.stats();
    assert_eq!(stats.faults.reset_upload, 1);
    let read = stats.class(Class::Put).bytes_in;
    assert!(read > 0 && read < size as u64, "read {read} of {size}");
    assert!(s.seen.lock().unwrap().is_empty());
    // Requests without a body are not reset, and the proxy still serves.
    assert_eq!(s.status("GET", "/b/k"), 200);
}

#[test]
fn delays_are_added_before_forwarding() {
    let s = setup();
    s.faults(r#"{"delay_ms": 300, "classes": ["HEAD"]}"#);
    let started = Instant::now();
    assert_eq!(s.status("HEAD", "/b/k"), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(s.status("GET", "/b/k"), 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(s.proxy.stats().faults.delayed, 1);
}

#[test]
fn seeded_faults_repeat_exactly() {
    let s = setup();
    let run = |seed: u64| -> Vec<u16> {
        s.faults(&format!(
            r#"{{"seed": {seed}, "slowdown": 0.3, "internal_error": 0.2}}"#
        ));
        (0..40)
            .map(|i| s.status("GET", &format!("/b/k{i}")))
            .collect()
    };
    let first = run(9);
    assert_eq!(first, run(9));
    assert_ne!(first, run(10));
    assert!(first.contains(&503) && first.contains(&500) && first.contains(&200));
}

#[test]
fn bad_fault_configs_are_refused() {
    let s = setup();
    for body in [r#"{"classes": ["NOPE"]}"#, r#"{"slowdown": 2}"#, "not json"] {
        let (status, _) = s
            .send("POST", "/__proxy/faults", &[], body.as_bytes().to_vec())
            .unwrap();
        assert_eq!(status, 400, "{body}");
    }
    s.proxy
        .set_faults(FaultConfig {
            delay_ms: 1,
            ..FaultConfig::default()
        })
        .unwrap();
    let (_, body) = s.send("GET", "/__proxy/faults", &[], Vec::new()).unwrap();
    assert!(body.contains("\"delay_ms\": 1"), "{body}");
}
