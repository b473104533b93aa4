//! Google Cloud Storage: `gs://bucket/prefix`, through object_store's GCS
//! client (the XML API). Credentials come from a service-account file,
//! `$GOOGLE_APPLICATION_CREDENTIALS` or the ambient chain ([`settings`]);
//! buckets are looked for and created with the JSON API, authenticated
//! with the store's own bearer token.

mod settings;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::{ClientOptions, ObjectStore};
use reqwest::{Method, Url};
use stowage_plugin_api::{ConfigKey, ConfigKind, ErrorKind, PluginError};

use crate::backend::Backend;
use crate::config::ObjstoreConfig;
use crate::store::{full_message, Errors};
use settings::{Credentials, GcsSettings};

/// The GCS keys of the config table.
pub fn options() -> Vec<ConfigKey> {
    vec![
        ConfigKey::new(
            "gcs_service_account_file",
            ConfigKind::Path,
            "A service-account JSON key file (with \"disable_oauth\": true and \
             \"gcs_base_url\" it reaches an emulator without tokens); unset: \
             $GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application default credentials, \
             else the instance metadata server.",
        ),
        ConfigKey::new(
            "gcs_endpoint",
            ConfigKind::String,
            "Base URL of the GCS XML API (http only on loopback); unset: the service-account \
             file's gcs_base_url, else https://storage.googleapis.com.",
        ),
        ConfigKey::new(
            "gcs_project",
            ConfigKind::String,
            "The project new buckets are created in; unset: $GOOGLE_CLOUD_PROJECT, else the \
             credentials file's project_id.",
        ),
    ]
}

/// The GCS provider.
#[derive(Debug)]
pub struct GcsBackend {
    settings: GcsSettings,
}

impl GcsBackend {
    /// Its settings, from the table's `gcs_*` keys, the environment and the
    /// credentials file.
    pub fn new(
        config: &ObjstoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GcsBackend, PluginError> {
        Ok(GcsBackend {
            settings: GcsSettings::resolve(config, env)?,
        })
    }

    /// object_store's GCS client for `bucket`.
    fn google_cloud_storage(
        &self,
        bucket: &str,
        client: &ClientOptions,
    ) -> Result<GoogleCloudStorage, PluginError> {
        let endpoint = &self.settings.endpoint;
        let client = client
            .clone()
            .with_allow_http(endpoint.starts_with("http://"));
        let builder = GoogleCloudStorageBuilder::new()
            .with_bucket_name(bucket)
            .with_base_url(endpoint)
            .with_client_options(client);
        let builder = match &self.settings.credentials {
            Credentials::ServiceAccount(file) => {
                builder.with_service_account_path(file.to_string_lossy())
            }
            Credentials::ApplicationDefault(file) => {
                builder.with_application_credentials(file.to_string_lossy())
            }
            Credentials::Ambient => builder,
        };
        builder
            .build()
            .map_err(|e| Errors::default().config(&format!("bucket {bucket}"), e))
    }
}

impl Backend for GcsBackend {
    fn schemes(&self) -> &'static [&'static str] {
        &["gs"]
    }

    fn store(
        &self,
        bucket: &str,
        client: &ClientOptions,
    ) -> Result<Arc<dyn ObjectStore>, PluginError> {
        Ok(Arc::new(self.google_cloud_storage(bucket, client)?))
    }

    fn endpoint(&self) -> String {
        format!(
            "{}, credentials from {}",
            self.settings.endpoint,
            self.settings.source()
        )
    }

    fn secrets(&self) -> Vec<String> {
        // The private key stays in its file, read by object_store; the
        // bearer tokens it makes are sent as headers, never shown.
        Vec::new()
    }

    fn ensure_bucket<'a>(
        &'a self,
        bucket: &'a str,
        http: &'a reqwest::Client,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<bool, PluginError>> {
        Box::pin(async move {
            // Its credentials only: the store's own client sends nothing here.
            let store = self.google_cloud_storage(bucket, &ClientOptions::new())?;
            let credential = store
                .credentials()
                .get_credential()
                .await
                .map_err(|e| errors.convert("cannot get a GCS access token", e))?;
            let buckets = BucketRequests {
                http,
                endpoint: &self.settings.endpoint,
                bearer: &credential.bearer,
                errors,
            };
            buckets
                .ensure(bucket, self.settings.project.as_deref())
                .await
        })
    }
}

/// Requests to the JSON API's buckets collection (object_store has no
/// bucket calls), with the store's bearer token (none for an emulator
/// with `disable_oauth`).
struct BucketRequests<'a> {
    http: &'a reqwest::Client,
    endpoint: &'a str,
    bearer: &'a str,
    errors: &'a Errors,
}

impl BucketRequests<'_> {
    /// Creates `bucket` in `project` unless it exists: a GET of the bucket,
    /// then an insert when it answered 404. `Ok(true)` when this call
    /// created it.
    async fn ensure(&self, bucket: &str, project: Option<&str>) -> Result<bool, PluginError> {
        if self.exists(bucket).await? {
            return Ok(false);
        }
        let Some(project) = project else {
            return Err(PluginError::new(
                ErrorKind::Config,
                format!(
                    "cannot create bucket {bucket}: no project to create it in; set gcs_project \
                     (or $GOOGLE_CLOUD_PROJECT)"
                ),
            ));
        };
        let mut url = buckets_url(self.endpoint, &[])?;
        url.query_pairs_mut().append_pair("project", project);
        let body = serde_json::json!({ "name": bucket }).to_string();
        let (status, answer) = self.send(Method::POST, url, body).await?;
        match status {
            200..=299 => Ok(true),
            // Created meanwhile (by us, or a concurrent restore), or the
            // name is someone else's: only the first is success.
            409 if self.exists(bucket).await? => Ok(false),
            _ => Err(refused("cannot create", bucket, status, &answer)),
        }
    }

    /// Whether `bucket` exists (and may be seen with these credentials).
    async fn exists(&self, bucket: &str) -> Result<bool, PluginError> {
        let url = buckets_url(self.endpoint, &[bucket])?;
        let (status, answer) = self.send(Method::GET, url, String::new()).await?;
        match status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(refused("cannot look for", bucket, status, &answer)),
        }
    }

    /// The status and body of the answer to one request.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: String,
    ) -> Result<(u16, String), PluginError> {
        let shown = url.to_string();
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body);
        if !self.bearer.is_empty() {
            request = request.bearer_auth(self.bearer);
        }
        let response = request.send().await.map_err(|e| {
            PluginError::new(
                ErrorKind::Unreachable,
                self.errors
                    .redact(&format!("{shown}: {}", full_message(&e.without_url()))),
            )
        })?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

/// The JSON API's buckets collection below `endpoint`, followed by
/// `segments` (each percent-encoded as one path segment).
fn buckets_url(endpoint: &str, segments: &[&str]) -> Result<Url, PluginError> {
    let invalid = || {
        PluginError::new(
            ErrorKind::Config,
            format!("gcs endpoint {endpoint}: not a base URL"),
        )
    };
    let mut url = Url::parse(endpoint).map_err(|_| invalid())?;
    url.path_segments_mut()
        .map_err(|_| invalid())?
        .pop_if_empty()
        .extend(["storage", "v1", "b"])
        .extend(segments);
    Ok(url)
}

/// A refused bucket request: its status and the JSON API's error message.
fn refused(what: &str, bucket: &str, status: u16, answer: &str) -> PluginError {
    let message = serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| "no error message".to_string());
    let kind = match status {
        401 | 403 => ErrorKind::Unauthorized,
        _ => ErrorKind::Other,
    };
    PluginError::new(
        kind,
        format!("{what} bucket {bucket}: HTTP {status} {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_account_file_without_a_usable_key_is_a_config_error() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("account.json");
        std::fs::write(
            &file,
            r#"{"type": "service_account", "project_id": "p", "private_key_id": "k",
                "private_key": "not a key", "client_email": "a@p.iam.gserviceaccount.com"}"#,
        )
        .unwrap();
        let config = ObjstoreConfig {
            gcs_service_account_file: Some(file.to_str().unwrap().into()),
            ..ObjstoreConfig::default()
        };
        let backend = GcsBackend::new(&config, &|_| None).unwrap();
        let error = backend
            .store("bucket", &ClientOptions::new())
            .err()
            .unwrap();
        assert_eq!(error.kind, ErrorKind::Config, "{error}");
        assert!(error.message.starts_with("bucket bucket: "), "{error}");
        assert!(!error.message.contains('\n'), "{error}");
    }

    #[test]
    fn bucket_urls_are_the_json_apis_with_names_encoded() {
        let endpoint = "https://127.0.0.1:4443";
        let url = buckets_url(endpoint, &["a b/c?d"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://127.0.0.1:4443/storage/v1/b/a%20b%2Fc%3Fd"
        );
        let mut url = buckets_url(endpoint, &[]).unwrap();
        url.query_pairs_mut().append_pair("project", "p&q");
        assert_eq!(
            url.as_str(),
            "https://127.0.0.1:4443/storage/v1/b?project=p%26q"
        );
    }

    #[test]
    fn a_refusal_names_the_status_and_the_servers_message() {
        let answer = r#"{"error": {"code": 403, "message": "no storage.buckets.create"}}"#;
        let error = refused("cannot create", "b", 403, answer);
        assert_eq!(error.kind, ErrorKind::Unauthorized);
        assert_eq!(
            error.message,
            "cannot create bucket b: HTTP 403 no storage.buckets.create"
        );
        let error = refused("cannot look for", "b", 500, "<html>");
        assert_eq!(error.kind, ErrorKind::Other);
        assert!(
            error.message.ends_with("HTTP 500 no error message"),
            "{error}"
        );
    }
}
