//! Where the S3 settings come from, in the AWS SDKs' order: the plugin's
//! own table, then the `AWS_*` environment, then the profile's section of
//! the shared config and credentials files (`~/.aws/config`,
//! `~/.aws/credentials`). object_store reads the environment but not the
//! files, so the files are read here; what neither gives (instance
//! profiles, web identity, container credentials) is left to
//! object_store's own chain.
//!
//! The secrets read here stay in this process: they sign requests, and
//! [`S3Settings::secrets`] lists them so that every message can be
//! redacted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use stowage_plugin_support::paths::expand_home;
use stowage_plugin_support::tool_config::assignment;

/// What the plugin's table says (each `None` when unset).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `endpoint`.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `profile`.
    pub profile: Option<String>,
    /// `config_file`.
    pub config_file: Option<String>,
    /// `credentials_file`.
    pub credentials_file: Option<String>,
}

/// The settings a store is built with.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); `None`: AWS.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// Static credentials, when found in the environment or the files.
    pub keys: Option<StaticKeys>,
    /// Where the keys came from, for `check` (never the keys themselves).
    pub source: String,
}

/// An access key, its secret and an optional session token.
#[derive(Clone)]
pub struct StaticKeys {
    /// `aws_access_key_id` (not a secret, but not shown either).
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// The secret values these settings hold, to redact from messages.
    pub fn secrets(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|k| [Some(k.secret_access_key.clone()), k.session_token.clone()])
            .flatten()
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Resolves the settings from `overrides`, the environment `env` (a
    /// lookup, so tests need not touch the process's) and the files.
    pub fn resolve(overrides: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> S3Settings {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let profile = overrides
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .or_else(|| env("AWS_DEFAULT_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let file = |configured: &Option<String>, variable: &str, default: &str| -> PathBuf {
            match configured.clone().or_else(|| env(variable)) {
                Some(path) => expand_home(&path),
                None => expand_home(default),
            }
        };
        let config_path = file(&overrides.config_file, "AWS_CONFIG_FILE", "~/.aws/config");
        let credentials_path = file(
            &overrides.credentials_file,
            "AWS_SHARED_CREDENTIALS_FILE",
            "~/.aws/credentials",
        );
        let config = profile_section(&config_path, &profile, true);
        let credentials = profile_section(&credentials_path, &profile, false);

        let env_keys = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
                access_key_id,
                secret_access_key,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        let file_keys = |section: &HashMap<String, String>| -> Option<StaticKeys> {
            Some(StaticKeys {
                access_key_id: section.get("aws_access_key_id")?.clone(),
                secret_access_key: section.get("aws_secret_access_key")?.clone(),
                session_token: section.get("aws_session_token").cloned(),
            })
        };
        let (keys, source) = if let Some(keys) = env_keys {
            (Some(keys), "AWS_ACCESS_KEY_ID".to_string())
        } else if let Some(keys) = file_keys(&credentials) {
            let source = format!("profile {profile} of {}", credentials_path.display());
            (Some(keys), source)
        } else if let Some(keys) = file_keys(&config) {
            let source = format!("profile {profile} of {}", config_path.display());
            (Some(keys), source)
        } else {
            (None, "object_store's default chain".to_string())
        };
        let region = overrides
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| config.get("region").cloned())
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = overrides
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| config.get("endpoint_url").cloned());
        S3Settings {
            endpoint,
            region,
            keys,
            source,
        }
    }
}

/// The top-level `name = value` settings of `profile`'s section of an AWS
/// config (`[profile NAME]`, or `[default]`) or credentials file (`[NAME]`);
/// empty when the file or the section is missing. Nested blocks (`s3 =`
/// followed by indented lines) are skipped.
fn profile_section(path: &Path, profile: &str, config_file: bool) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let wanted = |header: &str| -> bool {
        let words: Vec<&str> = header.split_whitespace().collect();
        match words.as_slice() {
            [name] if !config_file || *name == "default" => *name == profile,
            ["profile", name] if config_file => *name == profile,
            _ => false,
        }
    };
    let mut inside = false;
    let mut values = HashMap::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(header) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inside = wanted(header);
        } else if inside && !line.starts_with([' ', '\t']) {
            if let Some((name, value)) = assignment(line).filter(|(_, v)| !v.is_empty()) {
                values.insert(name.to_string(), value.to_string());
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\ns3 =\n    addressing_style = path\n[profile backup]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9000\n",
        )
        .unwrap();
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s3cr3t\n[backup]\naws_access_key_id = AKIABACKUP\naws_secret_access_key = b4ckup\naws_session_token = t0ken\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(config.display().to_string()),
            credentials_file: Some(credentials.display().to_string()),
            ..Overrides::default()
        };
        (dir, overrides)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_default_profile_of_the_files_is_read() {
        let (_dir, overrides) = files();
        let settings = S3Settings::resolve(&overrides, &no_env);
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(settings.endpoint, None);
        assert_eq!(settings.keys.unwrap().access_key_id, "AKIADEFAULT");
    }

    #[test]
    fn a_named_profile_brings_its_keys_region_and_endpoint() {
        let (_dir, mut overrides) = files();
        overrides.profile = Some("backup".into());
        let settings = S3Settings::resolve(&overrides, &no_env);
        assert_eq!(settings.region, "eu-central-1");
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(settings.secrets(), ["b4ckup", "t0ken"]);
        assert!(!format!("{settings:?}").contains("b4ckup"));
    }

    #[test]
    fn the_environment_wins_over_the_files_and_the_table_over_both() {
        let (_dir, mut overrides) = files();
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            "AWS_PROFILE" => Some("backup".to_string()),
            "AWS_REGION" => Some("ap-south-1".to_string()),
            _ => None,
        };
        let settings = S3Settings::resolve(&overrides, &env);
        assert_eq!(settings.keys.as_ref().unwrap().access_key_id, "AKIAENV");
        assert_eq!(settings.region, "ap-south-1");
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        overrides.region = Some("us-west-2".into());
        overrides.endpoint = Some("http://localhost:1".into());
        let settings = S3Settings::resolve(&overrides, &env);
        assert_eq!(settings.region, "us-west-2");
        assert_eq!(settings.endpoint.as_deref(), Some("http://localhost:1"));
    }

    #[test]
    fn no_keys_anywhere_leaves_them_to_object_store() {
        let overrides = Overrides {
            config_file: Some("/nonexistent/config".into()),
            credentials_file: Some("/nonexistent/credentials".into()),
            ..Overrides::default()
        };
        let settings = S3Settings::resolve(&overrides, &no_env);
        assert!(settings.keys.is_none());
        assert_eq!(settings.region, "us-east-1");
    }
}
