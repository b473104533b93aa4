//! Fault injection: which requests get an error, a reset or a delay,
//! decided by a seeded generator so a run can be reproduced.

use serde::{Deserialize, Serialize};

use crate::classify::Class;

/// The faults to inject, as `POST /__proxy/faults` takes them (JSON).
/// Every field is optional; the default injects nothing.
///
/// ```json
/// {"seed": 7, "slowdown": 0.05, "internal_error": 0.01,
///  "reset_upload": 0.02, "delay_ms": 20, "classes": ["PUT", "UPLOAD_PART"],
///  "max_faults": 100, "path_contains": ".stowage-lock", "delay_step_ms": 500}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the generator (set anew with every config).
    pub seed: u64,
    /// Fraction of requests answered `503 SlowDown` (not forwarded).
    pub slowdown: f64,
    /// Fraction of requests answered `500 InternalError` (not forwarded).
    pub internal_error: f64,
    /// Fraction of uploads (PUT / UploadPart with a body) whose connection is
    /// reset after part of the body was read (not forwarded).
    pub reset_upload: f64,
    /// Added delay before forwarding, in milliseconds.
    pub delay_ms: u64,
    /// Only requests of these classes (names as in the stats, e.g. `PUT`);
    /// empty means every class.
    pub classes: Vec<String>,
    /// Stop injecting errors and resets after this many (delays go on).
    pub max_faults: Option<u64>,
    /// Show single-part ETags as an SSE-KMS bucket does: not the content's
    /// MD5 (see [`crate::etags`]). Applies to every answer, whatever `classes`.
    pub opaque_etags: bool,
    /// Only requests whose path contains this text (a bucket, a key
    /// prefix such as `.stowage-lock`); none means every path.
    pub path_contains: Option<String>,
    /// Each request the faults apply to waits this much longer than the one
    /// before it, in milliseconds (the first waits `delay_ms`): requests
    /// sent at once arrive staggered.
    pub delay_step_ms: u64,
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward it (after `delay_ms`, if any).
    Forward,
    /// Answer 503 SlowDown.
    SlowDown,
    /// Answer 500 InternalError.
    InternalError,
    /// Read part of the body, then drop the connection.
    ResetUpload,
}

/// A config with its generator and counters.
#[derive(Debug, Default)]
pub struct FaultState {
    config: FaultConfig,
    classes: Vec<Class>,
    rng: SplitMix64,
    injected: u64,
    delayed: u64,
}

impl FaultState {
    /// A state for `config`; unknown class names are an error.
    pub fn new(config: FaultConfig) -> Result<FaultState, String> {
        let classes = config
            .classes
            .iter()
            .map(|name| Class::from_name(name).ok_or_else(|| format!("unknown class {name:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        for (name, p) in [
            ("slowdown", config.slowdown),
            ("internal_error", config.internal_error),
            ("reset_upload", config.reset_upload),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1, not {p}"));
            }
        }
        Ok(FaultState {
            rng: SplitMix64(config.seed),
            classes,
            config,
            injected: 0,
            delayed: 0,
        })
    }

    /// The config in force.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Whether a request of `class` for `path` is subject to the faults.
    pub fn applies_to(&self, class: Class, path: &str) -> bool {
        (self.classes.is_empty() || self.classes.contains(&class))
            && self
                .config
                .path_contains
                .as_ref()
                .is_none_or(|text| path.contains(text.as_str()))
    }

    /// Whether answers show ETags as an SSE-KMS bucket does.
    pub fn opaque_etags(&self) -> bool {
        self.config.opaque_etags
    }

    /// The delay for a request of `class` for `path`, in milliseconds
    /// (growing by `delay_step_ms` with every delayed request).
    pub fn delay_ms(&mut self, class: Class, path: &str) -> u64 {
        let delays = self.config.delay_ms > 0 || self.config.delay_step_ms > 0;
        if !delays || !self.applies_to(class, path) {
            return 0;
        }
        self.delayed += 1;
        self.config.delay_ms + (self.delayed - 1) * self.config.delay_step_ms
    }

    /// Decides the fate of one request of `class` for `path`; `has_body`
    /// says whether it carries a body (only uploads with a body can be
    /// reset). One draw per request the faults apply to, so the sequence of
    /// decisions depends only on the seed and the order of requests.
    pub fn decide(&mut self, class: Class, path: &str, has_body: bool) -> Decision {
        if !self.applies_to(class, path) {
            return Decision::Forward;
        }
        let draw = self.rng.next_f64();
        if self
            .config
            .max_faults
            .is_some_and(|max| self.injected >= max)
        {
            return Decision::Forward;
        }
        let c = &self.config;
        let decision = if draw < c.slowdown {
            Decision::SlowDown
        } else if draw < c.slowdown + c.internal_error {
            Decision::InternalError
        } else if class.is_upload()
            && has_body
            && draw < c.slowdown + c.internal_error + c.reset_upload
        {
            Decision::ResetUpload
        } else {
            Decision::Forward
        };
        if decision != Decision::Forward {
            self.injected += 1;
        }
        decision
    }
}

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Debug, Default)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The S3 XML error body for `code`.
pub fn s3_error_body(code: &str, message: &str, resource: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource>{}</Resource><RequestId>stowage-test-proxy</RequestId></Error>",
        xml_escape(resource)
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(config: FaultConfig, n: usize) -> Vec<Decision> {
        let mut state = FaultState::new(config).unwrap();
        (0..n)
            .map(|_| state.decide(Class::Put, "/b/k", true))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig {
            seed: 42,
            slowdown: 0.2,
            internal_error: 0.2,
            reset_upload: 0.2,
            ..FaultConfig::default()
        };
        let a = decisions(config.clone(), 200);
        assert_eq!(a, decisions(config.clone(), 200));
        assert_ne!(a, decisions(FaultConfig { seed: 43, ..config }, 200));
        for kind in [
            Decision::SlowDown,
            Decision::InternalError,
            Decision::ResetUpload,
            Decision::Forward,
        ] {
            let n = a.iter().filter(|d| **d == kind).count();
            assert!((20..=110).contains(&n), "{kind:?}: {n} of 200");
        }
    }

    #[test]
    fn faults_keep_to_their_classes_and_limit() {
        let mut state = FaultState::new(FaultConfig {
            slowdown: 1.0,
            classes: vec!["put".into()],
            max_faults: Some(2),
            ..FaultConfig::default()
        })
        .unwrap();
        assert_eq!(state.decide(Class::Get, "/b/k", false), Decision::Forward);
        assert_eq!(state.decide(Class::Put, "/b/k", true), Decision::SlowDown);
        assert_eq!(state.decide(Class::Put, "/b/k", true), Decision::SlowDown);
        assert_eq!(state.decide(Class::Put, "/b/k", true), Decision::Forward);
    }

    #[test]
    fn delays_keep_to_their_paths_and_grow_by_their_step() {
        let mut state = FaultState::new(FaultConfig {
            delay_ms: 2000,
            delay_step_ms: 500,
            classes: vec!["PUT".into()],
            path_contains: Some(".stowage-lock".into()),
            ..FaultConfig::default()
        })
        .unwrap();
        assert_eq!(state.delay_ms(Class::Put, "/b/object"), 0);
        assert_eq!(state.delay_ms(Class::Get, "/b/.stowage-lock.x"), 0);
        let delays: Vec<u64> = (0..3)
            .map(|_| state.delay_ms(Class::Put, "/b/.stowage-lock.x"))
            .collect();
        assert_eq!(delays, [2000, 2500, 3000]);
        let mut state = FaultState::new(FaultConfig {
            delay_step_ms: 100,
            ..FaultConfig::default()
        })
        .unwrap();
        let delays: Vec<u64> = (0..3).map(|_| state.delay_ms(Class::Put, "/b/k")).collect();
        assert_eq!(delays, [0, 100, 200]);
        assert_eq!(
            state.decide(Class::Put, "/b/object", true),
            Decision::Forward
        );
    }

    #[test]
    fn only_uploads_with_a_body_are_reset() {
        let mut state = FaultState::new(FaultConfig {
            reset_upload: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
        assert_eq!(state.decide(Class::Get, "/b/k", false), Decision::Forward);
        assert_eq!(state.decide(Class::Put, "/b/k", false), Decision::Forward);
        assert_eq!(
            state.decide(Class::UploadPart, "/b/k", true),
            Decision::ResetUpload
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(FaultState::new(FaultConfig {
            classes: vec!["NOPE".into()],
            ..FaultConfig::default()
        })
        .is_err());
        assert!(FaultState::new(FaultConfig {
            slowdown: 1.5,
            ..FaultConfig::default()
        })
        .is_err());
    }
}
