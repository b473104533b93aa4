//! Where the GCS settings come from: the table's `gcs_*` keys, the
//! `GOOGLE_*` environment, and the credentials file they name. The file
//! itself (its private key) is object_store's to read; only its
//! `project_id` and, for a service-account file, `gcs_base_url` (an
//! emulator's URL, with `disable_oauth`) are read here.

use std::path::PathBuf;

use serde::Deserialize;
use stowage_plugin_api::{ErrorKind, PluginError};
use stowage_plugin_support::paths::expand_home;

use crate::config::{check_endpoint, ObjstoreConfig};
use crate::NAME;

/// GCS's own endpoint, object_store's default.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// Which credentials the stores are built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A service-account key file (`gcs_service_account_file`).
    ServiceAccount(PathBuf),
    /// `$GOOGLE_APPLICATION_CREDENTIALS`: a service-account or gcloud user file.
    ApplicationDefault(PathBuf),
    /// object_store's chain: gcloud's application default credentials
    /// (`~/.config/gcloud/application_default_credentials.json`), else the
    /// instance metadata server.
    Ambient,
}

/// The settings a GCS store is built with.
#[derive(Debug, Clone)]
pub struct GcsSettings {
    /// The XML API's base URL, without a trailing slash.
    pub endpoint: String,
    /// The project new buckets are created in, if known.
    pub project: Option<String>,
    /// Where the credentials come from.
    pub credentials: Credentials,
}

/// The fields of a credentials file read here.
#[derive(Debug, Default, Deserialize)]
struct CredentialsFile {
    project_id: Option<String>,
    gcs_base_url: Option<String>,
}

impl GcsSettings {
    /// Resolves the settings from `config`, the environment `env` (a
    /// lookup, so tests need not touch the process's) and the credentials
    /// file. A `gcs_service_account_file` that cannot be read, or an
    /// endpoint sending plain http off this machine, is a config error.
    pub fn resolve(
        config: &ObjstoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GcsSettings, PluginError> {
        let credentials = match (
            &config.gcs_service_account_file,
            env("GOOGLE_APPLICATION_CREDENTIALS").filter(|f| !f.is_empty()),
        ) {
            (Some(file), _) => Credentials::ServiceAccount(expand_home(file)),
            (None, Some(file)) => Credentials::ApplicationDefault(PathBuf::from(file)),
            (None, None) => Credentials::Ambient,
        };
        let (file, base_url) = match &credentials {
            Credentials::ServiceAccount(path) => {
                let file = read_credentials_file(path)?;
                let base_url = file.gcs_base_url.clone();
                (
                    file,
                    base_url.map(|url| (url, "the service-account file's gcs_base_url")),
                )
            }
            // object_store reports an unreadable file when a bucket is used,
            // and honours gcs_base_url only in a service-account file.
            Credentials::ApplicationDefault(path) => {
                (read_credentials_file(path).unwrap_or_default(), None)
            }
            Credentials::Ambient => (CredentialsFile::default(), None),
        };
        let (endpoint, key) = match (&config.gcs_endpoint, base_url) {
            (Some(endpoint), _) => (endpoint.clone(), "gcs_endpoint"),
            (None, Some((url, key))) => (url, key),
            (None, None) => (DEFAULT_ENDPOINT.to_string(), "gcs_endpoint"),
        };
        check_endpoint(key, &endpoint)?;
        let project = config
            .gcs_project
            .clone()
            .or_else(|| env("GOOGLE_CLOUD_PROJECT").filter(|p| !p.is_empty()))
            .or(file.project_id);
        Ok(GcsSettings {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            project,
            credentials,
        })
    }

    /// Where the credentials come from, for `check` (never a secret).
    pub fn source(&self) -> String {
        match &self.credentials {
            Credentials::ServiceAccount(path) => {
                format!("the service-account file {}", path.display())
            }
            Credentials::ApplicationDefault(path) => {
                format!("$GOOGLE_APPLICATION_CREDENTIALS ({})", path.display())
            }
            Credentials::Ambient => {
                "gcloud's application default credentials, else the instance metadata server"
                    .to_string()
            }
        }
    }
}

/// The fields of the JSON credentials file `path` read here; one line
/// naming the file (never its content) when it cannot be read.
fn read_credentials_file(path: &std::path::Path) -> Result<CredentialsFile, PluginError> {
    let refused = |why: &dyn std::fmt::Display| {
        PluginError::new(
            ErrorKind::Config,
            format!(
                "plugin {NAME}: gcs_service_account_file {}: {why}",
                path.display()
            ),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| refused(&e))?;
    serde_json::from_str(&text).map_err(|e| refused(&format!("not a JSON key file ({e})")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A service-account file as the GCS emulator's test setup writes it.
    fn key_file(dir: &std::path::Path, base_url: Option<&str>) -> String {
        let path = dir.join("account.json");
        let base_url = base_url.map_or(String::new(), |u| format!(", \"gcs_base_url\": {u:?}"));
        std::fs::write(
            &path,
            format!(
                "{{\"type\": \"service_account\", \"project_id\": \"from-file\", \
                 \"private_key\": \"\", \"private_key_id\": \"\", \
                 \"client_email\": \"a@b\", \"disable_oauth\": true{base_url}}}"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    }

    fn resolve(config: &ObjstoreConfig, env: &[(&str, &str)]) -> Result<GcsSettings, PluginError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GcsSettings::resolve(config, &|name| env.get(name).cloned())
    }

    #[test]
    fn without_settings_it_is_gcs_with_ambient_credentials() {
        let settings = resolve(&ObjstoreConfig::default(), &[]).unwrap();
        assert_eq!(settings.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(settings.credentials, Credentials::Ambient);
        assert_eq!(settings.project, None);
    }

    #[test]
    fn a_service_account_file_gives_the_endpoint_and_project() {
        let dir = tempfile::tempdir().unwrap();
        let config = ObjstoreConfig {
            gcs_service_account_file: Some(key_file(dir.path(), Some("https://127.0.0.1:4443/"))),
            ..ObjstoreConfig::default()
        };
        let settings =
            resolve(&config, &[("GOOGLE_APPLICATION_CREDENTIALS", "/elsewhere")]).unwrap();
        assert_eq!(settings.endpoint, "https://127.0.0.1:4443");
        assert_eq!(settings.project.as_deref(), Some("from-file"));
        assert_eq!(
            settings.credentials,
            Credentials::ServiceAccount(dir.path().join("account.json"))
        );
    }

    #[test]
    fn the_table_and_environment_come_before_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ObjstoreConfig {
            gcs_service_account_file: Some(key_file(dir.path(), Some("https://127.0.0.1:4443"))),
            gcs_endpoint: Some("https://gcs.example.com".into()),
            ..ObjstoreConfig::default()
        };
        let env = [("GOOGLE_CLOUD_PROJECT", "from-env")];
        let settings = resolve(&config, &env).unwrap();
        assert_eq!(settings.endpoint, "https://gcs.example.com");
        assert_eq!(settings.project.as_deref(), Some("from-env"));
        config.gcs_project = Some("from-table".into());
        let settings = resolve(&config, &env).unwrap();
        assert_eq!(settings.project.as_deref(), Some("from-table"));
    }

    #[test]
    fn application_default_credentials_give_the_project_but_not_an_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let file = key_file(dir.path(), Some("https://127.0.0.1:4443"));
        let settings = resolve(
            &ObjstoreConfig::default(),
            &[("GOOGLE_APPLICATION_CREDENTIALS", file.as_str())],
        )
        .unwrap();
        assert_eq!(
            settings.credentials,
            Credentials::ApplicationDefault(file.into())
        );
        assert_eq!(settings.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(settings.project.as_deref(), Some("from-file"));
    }

    #[test]
    fn an_unreadable_service_account_file_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let not_json = dir.path().join("key.txt");
        std::fs::write(&not_json, "-----BEGIN PRIVATE KEY-----\nsecret\n").unwrap();
        for file in [not_json.to_str().unwrap(), "/nonexistent/account.json"] {
            let config = ObjstoreConfig {
                gcs_service_account_file: Some(file.into()),
                ..ObjstoreConfig::default()
            };
            let error = resolve(&config, &[]).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config, "{file}");
            assert!(error.message.contains(file), "{error}");
            assert!(!error.message.contains("secret"), "{error}");
        }
    }

    #[test]
    fn plain_http_off_this_machine_is_refused_from_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let config = ObjstoreConfig {
            gcs_service_account_file: Some(key_file(dir.path(), Some("http://gcs.lan:4443"))),
            ..ObjstoreConfig::default()
        };
        let error = resolve(&config, &[]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("gcs_base_url"), "{error}");
        let config = ObjstoreConfig {
            gcs_endpoint: Some("http://127.0.0.1:4443".into()),
            ..config
        };
        assert_eq!(
            resolve(&config, &[]).unwrap().endpoint,
            "http://127.0.0.1:4443"
        );
    }
}
