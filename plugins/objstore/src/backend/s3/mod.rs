//! S3 and S3-compatible stores (MinIO, Ceph, moto): `s3://bucket/prefix`.
//! The settings come from the table, the `AWS_*` environment and the AWS
//! files ([`credentials`]); buckets are created with a presigned request.

mod credentials;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ClientOptions, ObjectStore};
use stowage_plugin_api::{ConfigKey, ConfigKind, ErrorKind, PluginError};

use crate::backend::Backend;
use crate::config::{check_endpoint, ObjstoreConfig};
use crate::store::{full_message, Errors};
use credentials::{Overrides, S3Settings};

/// The S3 keys of the config table.
pub fn options() -> Vec<ConfigKey> {
    vec![
        ConfigKey::new(
            "s3_endpoint",
            ConfigKind::String,
            "URL of an S3-compatible server (http only on loopback); unset: $AWS_ENDPOINT_URL_S3, \
             else $AWS_ENDPOINT_URL, else the profile's endpoint_url, else AWS.",
        ),
        ConfigKey::new(
            "s3_region",
            ConfigKind::String,
            "The buckets' region; unset: $AWS_REGION, else $AWS_DEFAULT_REGION, else the \
             profile's, else us-east-1.",
        ),
        ConfigKey::new(
            "s3_profile",
            ConfigKind::String,
            "The profile of the AWS config and credentials files; unset: $AWS_PROFILE, else \
             default.",
        ),
        ConfigKey::new(
            "s3_config_file",
            ConfigKind::Path,
            "The AWS config file; unset: $AWS_CONFIG_FILE, else ~/.aws/config.",
        ),
        ConfigKey::new(
            "s3_credentials_file",
            ConfigKind::Path,
            "The AWS credentials file; unset: $AWS_SHARED_CREDENTIALS_FILE, else \
             ~/.aws/credentials.",
        ),
    ]
}

/// The S3 provider.
#[derive(Debug)]
pub struct S3Backend {
    settings: S3Settings,
}

impl S3Backend {
    /// Its settings, from the table's `s3_*` keys, the environment and the
    /// AWS files.
    pub fn new(
        config: &ObjstoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Backend, PluginError> {
        let overrides = Overrides {
            endpoint: config.s3_endpoint.clone(),
            region: config.s3_region.clone(),
            profile: config.s3_profile.clone(),
            config_file: config.s3_config_file.clone(),
            credentials_file: config.s3_credentials_file.clone(),
        };
        let settings = S3Settings::resolve(&overrides, env);
        if let Some(endpoint) = &settings.endpoint {
            check_endpoint("s3_endpoint", endpoint)?;
        }
        Ok(S3Backend { settings })
    }

    /// object_store's S3 client for `bucket`.
    fn amazon_s3(&self, bucket: &str, client: &ClientOptions) -> Result<AmazonS3, PluginError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&self.settings.region)
            .with_client_options(client.clone());
        if let Some(endpoint) = &self.settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(keys) = &self.settings.keys {
            builder = builder
                .with_access_key_id(&keys.access_key_id)
                .with_secret_access_key(&keys.secret_access_key);
            if let Some(token) = &keys.session_token {
                builder = builder.with_token(token);
            }
        }
        builder.build().map_err(|e| {
            let error = Errors::new(self.secrets()).convert(&format!("bucket {bucket}"), e);
            PluginError::new(ErrorKind::Config, error.message)
        })
    }
}

impl Backend for S3Backend {
    fn schemes(&self) -> &'static [&'static str] {
        &["s3"]
    }

    fn store(
        &self,
        bucket: &str,
        client: &ClientOptions,
    ) -> Result<Arc<dyn ObjectStore>, PluginError> {
        Ok(Arc::new(self.amazon_s3(bucket, client)?))
    }

    fn endpoint(&self) -> String {
        let endpoint = self
            .settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("AWS S3 ({})", self.settings.region));
        format!("{endpoint}, credentials from {}", self.settings.source)
    }

    fn secrets(&self) -> Vec<String> {
        self.settings.secrets()
    }

    fn ensure_bucket<'a>(
        &'a self,
        bucket: &'a str,
        http: &'a reqwest::Client,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<bool, PluginError>> {
        Box::pin(async move {
            // Signing only: the store's own client sends nothing here.
            let store = self.amazon_s3(bucket, &ClientOptions::new())?;
            ensure_bucket(&store, http, bucket, &self.settings.region, errors).await
        })
    }
}

/// The answer to a bucket-level request: its HTTP status and body.
async fn bucket_request(
    store: &AmazonS3,
    client: &reqwest::Client,
    method: reqwest::Method,
    body: String,
    errors: &Errors,
) -> Result<(u16, String), PluginError> {
    // object_store signs requests for objects; the bucket's own URL is the
    // object path "" (a presigned URL: the secret never leaves the process).
    let url = store
        .signed_url(method.clone(), &Path::default(), Duration::from_secs(300))
        .await
        .map_err(|e| errors.convert("cannot sign a bucket request", e))?;
    let shown = url
        .as_str()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let response = client
        .request(method, url)
        // Explicit: an empty body is otherwise sent without a length,
        // which S3 answers with 411.
        .header(reqwest::header::CONTENT_LENGTH, body.len())
        .body(body)
        .send()
        .await
        .map_err(|e| {
            PluginError::new(
                ErrorKind::Unreachable,
                errors.redact(&format!("{shown}: {}", full_message(&e.without_url()))),
            )
        })?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok((status, text))
}

/// Creates the bucket unless it exists: a HEAD of the bucket, then a
/// CreateBucket (in `region`) when it answered 404. `Ok(true)` when this
/// call created it.
async fn ensure_bucket(
    store: &AmazonS3,
    client: &reqwest::Client,
    bucket: &str,
    region: &str,
    errors: &Errors,
) -> Result<bool, PluginError> {
    let refused = |what: &str, status: u16, body: &str| {
        let code = body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("no error code", |(code, _)| code);
        let kind = match status {
            401 | 403 => ErrorKind::Unauthorized,
            _ => ErrorKind::Other,
        };
        PluginError::new(
            kind,
            format!("{what} bucket {bucket}: HTTP {status} {code}"),
        )
    };
    let (status, body) =
        bucket_request(store, client, reqwest::Method::HEAD, String::new(), errors).await?;
    match status {
        200..=299 => return Ok(false),
        404 => {}
        _ => return Err(refused("cannot look for", status, &body)),
    }
    let configuration = match region {
        "us-east-1" => String::new(),
        region => format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
        ),
    };
    let (status, body) =
        bucket_request(store, client, reqwest::Method::PUT, configuration, errors).await?;
    match status {
        200..=299 => Ok(true),
        409 if body.contains("BucketAlreadyOwnedByYou") => Ok(false),
        _ => Err(refused("cannot create", status, &body)),
    }
}
