//! The one request s3cmd cannot make: a PUT with `If-None-Match: *`, which
//! S3 refuses with 412 when the key exists — a conditional create. The
//! plugin sends it itself, signed with SigV4 (`aws-sigv4`) over a small
//! blocking HTTP client (`ureq`), with the credentials, endpoint and region
//! of s3cmd's own config file (overridden by the plugin's `endpoint`,
//! `use_https` and `region`, as s3cmd's command line is). The secret stays
//! in this process: it signs the request and is never passed to a child
//! process, printed or put into an error.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use stowage_plugin_api::{ErrorKind, PluginError};

/// How long the one request may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Characters of a key written as they are in a request path: S3's
/// unreserved ones and the `/` between segments.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// What the plugin's own config says about the endpoint (it wins over the
/// config file, as on s3cmd's command line).
#[derive(Debug, Default, Clone)]
pub struct EndpointOverrides {
    /// `endpoint`: host and port, for both path and bucket addressing.
    pub endpoint: Option<String>,
    /// `use_https`.
    pub use_https: Option<bool>,
    /// `region`.
    pub region: Option<String>,
}

/// Where and as whom to send the conditional PUT.
#[derive(Clone)]
pub struct DirectS3 {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    /// `host_base`: the endpoint for path-style requests.
    host_base: String,
    /// `host_bucket`: `%(bucket)s.host` for virtual-host requests.
    host_bucket: String,
    https: bool,
    region: String,
}

impl std::fmt::Debug for DirectS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectS3")
            .field("host_base", &self.host_base)
            .field("host_bucket", &self.host_bucket)
            .field("https", &self.https)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The `name = value` settings of an s3cmd config file's `[default]`
/// section (s3cmd reads no other).
pub fn config_values(text: &str) -> HashMap<String, String> {
    let mut in_default = true;
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if let (true, Some((name, value))) = (in_default, line.split_once('=')) {
            values.insert(name.trim().to_string(), value.trim().to_string());
        }
    }
    values
}

impl DirectS3 {
    /// The target described by s3cmd's config `values` (see
    /// [`config_values`]), the plugin's `overrides`, and for credentials
    /// missing from the file, the `AWS_*` environment variables s3cmd reads
    /// too. `None` without credentials.
    pub fn new(values: &HashMap<String, String>, overrides: &EndpointOverrides) -> Option<Self> {
        let setting = |name: &str, variable: &str| {
            values
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .or_else(|| std::env::var(variable).ok().filter(|v| !v.is_empty()))
        };
        let access_key = setting("access_key", "AWS_ACCESS_KEY_ID")?;
        let secret_key = setting("secret_key", "AWS_SECRET_ACCESS_KEY")?;
        let value = |name: &str, default: &str| {
            values
                .get(name)
                .filter(|v| !v.is_empty())
                .map_or(default.to_string(), Clone::clone)
        };
        let (host_base, host_bucket) = match &overrides.endpoint {
            Some(endpoint) => (endpoint.clone(), endpoint.clone()),
            None => (
                value("host_base", "s3.amazonaws.com"),
                value("host_bucket", "%(bucket)s.s3.amazonaws.com"),
            ),
        };
        let https = overrides
            .use_https
            .unwrap_or_else(|| !value("use_https", "True").eq_ignore_ascii_case("false"));
        let region = overrides.region.clone().unwrap_or_else(|| {
            match value("bucket_location", "us-east-1").as_str() {
                "US" | "" => "us-east-1".to_string(),
                other => other.to_string(),
            }
        });
        Some(DirectS3 {
            access_key,
            secret_key,
            session_token: setting("access_token", "AWS_SESSION_TOKEN"),
            host_base,
            host_bucket,
            https,
            region,
        })
    }

    /// The URL of `key` in `bucket`: virtual-host style when `host_bucket`
    /// names the bucket and the bucket name allows it, else path style —
    /// s3cmd's own choice.
    fn object_url(&self, bucket: &str, key: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let key = utf8_percent_encode(key, KEY_PATH);
        let dns_safe = bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if self.host_bucket.contains("%(bucket)s") && dns_safe {
            let host = self.host_bucket.replace("%(bucket)s", bucket);
            format!("{scheme}://{host}/{key}")
        } else {
            format!("{scheme}://{}/{bucket}/{key}", self.host_base)
        }
    }

    /// Stores `bytes` as `key` in `bucket` unless the key exists: `Ok(true)`
    /// when this request created it, `Ok(false)` when S3 answered 412 (the
    /// key exists) or 409 (another conditional write to it was under way).
    pub fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let url = self.object_url(bucket, key);
        let headers = self.signed_headers(&url, bytes)?;
        let mut request = ureq::put(&url).timeout(TIMEOUT);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        match request.send_bytes(bytes) {
            Ok(_) => Ok(true),
            Err(ureq::Error::Status(412 | 409, _)) => Ok(false),
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                Err(refusal(status, &body, bucket, key))
            }
            Err(ureq::Error::Transport(transport)) => Err(PluginError::new(
                ErrorKind::Unreachable,
                format!(
                    "conditional PUT of {key} to {}: {transport}",
                    self.host_base
                ),
            )),
        }
    }

    /// The headers of a SigV4-signed conditional PUT of `bytes` to `url`.
    fn signed_headers(
        &self,
        url: &str,
        bytes: &[u8],
    ) -> Result<Vec<(String, String)>, PluginError> {
        let signing_error = |e: &dyn std::fmt::Display| {
            PluginError::new(
                ErrorKind::Other,
                format!("cannot sign the conditional PUT: {e}"),
            )
        };
        let host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let unsigned = [("host", host.as_str()), ("if-none-match", "*")];
        let identity = Credentials::new(
            &self.access_key,
            &self.secret_key,
            self.session_token.clone(),
            None,
            "s3cmd config",
        )
        .into();
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent (no double encoding, no normalisation)
        // and wants the body's SHA-256 in a header.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| signing_error(&e))?
            .into();
        let request =
            SignableRequest::new("PUT", url, unsigned.into_iter(), SignableBody::Bytes(bytes))
                .map_err(|e| signing_error(&e))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| signing_error(&e))?
            .into_parts();
        let mut headers: Vec<(String, String)> = vec![("If-None-Match".into(), "*".into())];
        headers.extend(
            instructions
                .headers()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        Ok(headers)
    }
}

/// The error for an S3 answer other than success or "taken", from its
/// status and the `<Code>` of its XML body.
fn refusal(status: u16, body: &str, bucket: &str, key: &str) -> PluginError {
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("no error code", |(code, _)| code);
    let kind = match (status, code) {
        (404, "NoSuchBucket") => ErrorKind::BucketMissing,
        (401 | 403, _) => ErrorKind::Unauthorized,
        _ => ErrorKind::ToolFailed,
    };
    PluginError::new(
        kind,
        format!("conditional PUT of {key} to bucket {bucket} failed: HTTP {status} {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[default]\naccess_key = AKIA\nsecret_key = s3cr3t\nhost_base = 127.0.0.1:9000\nhost_bucket = 127.0.0.1:9000\nuse_https = False\nbucket_location = US\n[other]\nsecret_key = not-this\n";

    #[test]
    fn the_target_comes_from_the_default_section_and_the_overrides() {
        let values = config_values(CONFIG);
        assert_eq!(values["secret_key"], "s3cr3t");
        let direct = DirectS3::new(&values, &EndpointOverrides::default()).unwrap();
        assert_eq!(direct.region, "us-east-1");
        assert_eq!(
            direct.object_url("bkt", "d d/it's #1+%.txt"),
            "http://127.0.0.1:9000/bkt/d%20d/it%27s%20%231%2B%25.txt"
        );
        let overrides = EndpointOverrides {
            endpoint: Some("%(bucket)s.minio:9000".into()),
            use_https: Some(true),
            region: Some("eu-west-1".into()),
        };
        let direct = DirectS3::new(&values, &overrides).unwrap();
        assert_eq!(direct.object_url("bkt", "k"), "https://bkt.minio:9000/k");
        assert_eq!(direct.region, "eu-west-1");
    }

    #[test]
    fn the_secret_is_in_no_debug_output_and_no_error() {
        let direct = DirectS3::new(&config_values(CONFIG), &EndpointOverrides::default()).unwrap();
        assert!(!format!("{direct:?}").contains("s3cr3t"));
        let headers = direct
            .signed_headers("http://127.0.0.1:9000/bkt/k", b"x")
            .unwrap();
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"authorization"), "{names:?}");
        assert!(headers.iter().all(|(_, v)| !v.contains("s3cr3t")));
        let error = refusal(404, "<Error><Code>NoSuchBucket</Code></Error>", "bkt", "k");
        assert_eq!(error.kind, ErrorKind::BucketMissing);
        assert_eq!(
            error.message.as_str(),
            "conditional PUT of k to bucket bkt failed: HTTP 404 NoSuchBucket"
        );
    }
}
