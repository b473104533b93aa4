//! Where the Azure settings come from. The credential, first found wins:
//!
//! 1. the file the table's `azure_credentials_file` names, holding a
//!    connection string (`AccountName=...;AccountKey=...` or
//!    `...;SharedAccessSignature=...`, as `az storage account
//!    show-connection-string -o tsv` prints it), or GitLab's
//!    `azure_config` (`azure_storage_account_name:`,
//!    `azure_storage_access_key:`, optional `azure_storage_domain:`, the
//!    file the Helm chart's toolbox names in `AZURE_CONFIG_FILE`);
//! 2. `AZURE_STORAGE_ACCOUNT_KEY`, else `AZURE_STORAGE_SAS_TOKEN`;
//! 3. `AZURE_STORAGE_CONNECTION_STRING`;
//! 4. none here: object_store's own chain (service principal, workload or
//!    managed identity, the az CLI), from the `AZURE_*` environment.
//!
//! The account is the table's `azure_account`, else the connection
//! string's `AccountName`, else `AZURE_STORAGE_ACCOUNT_NAME`; the endpoint
//! the table's `azure_endpoint`, else the connection string's
//! `BlobEndpoint` (or its `EndpointSuffix`), else `AZURE_STORAGE_ENDPOINT`,
//! else `https://ACCOUNT.blob.core.windows.net`.
//!
//! The key and the SAS stay in this process: they sign requests, and
//! [`AzureSettings::secrets`] lists them so that every message can be
//! redacted. No message here quotes a file's content.

use stowage_plugin_api::{ErrorKind, PluginError};
use stowage_plugin_support::paths::expand_home;

use crate::NAME;

/// What the plugin's table says (each `None` when unset).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `azure_account`.
    pub account: Option<String>,
    /// `azure_endpoint`.
    pub endpoint: Option<String>,
    /// `azure_credentials_file`.
    pub credentials_file: Option<String>,
}

/// A credential the plugin found itself.
#[derive(Clone, PartialEq, Eq)]
pub enum StaticCredential {
    /// The account key (base64).
    Key(String),
    /// A shared access signature (a query string, with or without `?`).
    Sas(String),
}

/// The settings a store is built with.
#[derive(Clone, Default)]
pub struct AzureSettings {
    /// The storage account, if known.
    pub account: Option<String>,
    /// The blob service URL (no trailing `/`), if not the default.
    pub endpoint: Option<String>,
    /// The key or SAS, when found; `None`: object_store's chain.
    pub credential: Option<StaticCredential>,
    /// Where the credential came from, for `check` (never the credential).
    pub source: String,
}

impl std::fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSettings")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The parts of a connection string the plugin uses.
#[derive(Default, PartialEq, Eq)]
struct ConnectionString {
    account: Option<String>,
    credential: Option<StaticCredential>,
    endpoint: Option<String>,
}

impl ConnectionString {
    /// Parses `Name=Value;...` (names case-insensitive, values may hold
    /// `=`, unknown names ignored). `None` when nothing in it is a setting.
    fn parse(text: &str) -> Option<ConnectionString> {
        let mut protocol = "https".to_string();
        let mut suffix = None;
        let mut parsed = ConnectionString::default();
        let mut settings = 0;
        for part in text.trim().split(';').map(str::trim) {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            settings += 1;
            match name.trim().to_ascii_lowercase().as_str() {
                "accountname" => parsed.account = Some(value),
                "accountkey" => parsed.credential = Some(StaticCredential::Key(value)),
                "sharedaccesssignature" => parsed.credential = Some(StaticCredential::Sas(value)),
                "blobendpoint" => parsed.endpoint = Some(value),
                "defaultendpointsprotocol" => protocol = value,
                "endpointsuffix" => suffix = Some(value),
                _ => settings -= 1,
            }
        }
        if parsed.endpoint.is_none() {
            if let (Some(account), Some(suffix)) = (&parsed.account, suffix) {
                parsed.endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
            }
        }
        (settings > 0).then_some(parsed)
    }
}

impl ConnectionString {
    /// Parses GitLab's `azure_config` (YAML lines `name: value`, quotes
    /// allowed). `None` without an account name and an access key.
    fn parse_gitlab_azure_config(text: &str) -> Option<ConnectionString> {
        let value = |wanted: &str| {
            text.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == wanted).then(|| {
                    let value = value.split(" #").next().unwrap_or_default().trim();
                    value.trim_matches(['"', '\'']).to_string()
                })
            })
        };
        let account = value("azure_storage_account_name").filter(|v| !v.is_empty())?;
        let key = value("azure_storage_access_key").filter(|v| !v.is_empty())?;
        let domain = value("azure_storage_domain").filter(|v| !v.is_empty());
        Some(ConnectionString {
            endpoint: domain.map(|domain| format!("https://{account}.{domain}")),
            account: Some(account),
            credential: Some(StaticCredential::Key(key)),
        })
    }
}

impl AzureSettings {
    /// The secret values these settings hold, to redact from messages: the
    /// key, or the SAS and its signature (as given and percent-decoded).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = match &self.credential {
            Some(StaticCredential::Key(key)) => vec![key.clone()],
            Some(StaticCredential::Sas(sas)) => {
                let sas = sas.trim_start_matches('?');
                let signature = sas
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("sig="))
                    .unwrap_or_default();
                vec![
                    sas.to_string(),
                    signature.to_string(),
                    signature
                        .replace("%2B", "+")
                        .replace("%2F", "/")
                        .replace("%3D", "="),
                ]
            }
            None => Vec::new(),
        };
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// Resolves the settings from `overrides`, the environment `env` (a
    /// lookup, so tests need not touch the process's) and the file the
    /// table names. A named file that cannot be read, or holds no
    /// connection string, is a config error.
    pub fn resolve(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AzureSettings, PluginError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let (found, source) = if let Some(file) = &overrides.credentials_file {
            (read_credentials_file(file)?, file.clone())
        } else if let Some(key) = env("AZURE_STORAGE_ACCOUNT_KEY") {
            let credential = Some(StaticCredential::Key(key));
            let found = ConnectionString {
                credential,
                ..ConnectionString::default()
            };
            (found, "AZURE_STORAGE_ACCOUNT_KEY".to_string())
        } else if let Some(sas) = env("AZURE_STORAGE_SAS_TOKEN") {
            let credential = Some(StaticCredential::Sas(sas));
            let found = ConnectionString {
                credential,
                ..ConnectionString::default()
            };
            (found, "AZURE_STORAGE_SAS_TOKEN".to_string())
        } else if let Some(found) = env("AZURE_STORAGE_CONNECTION_STRING")
            .as_deref()
            .and_then(ConnectionString::parse)
        {
            (found, "AZURE_STORAGE_CONNECTION_STRING".to_string())
        } else {
            let chain = "object_store's chain (AZURE_* environment, managed identity, az CLI)";
            (ConnectionString::default(), chain.to_string())
        };
        let account = overrides
            .account
            .clone()
            .or(found.account)
            .or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME"));
        let endpoint = overrides
            .endpoint
            .clone()
            .or(found.endpoint)
            .or_else(|| env("AZURE_STORAGE_ENDPOINT"))
            .map(|e| e.trim_end_matches('/').to_string());
        Ok(AzureSettings {
            account,
            endpoint,
            credential: found.credential,
            source,
        })
    }
}

/// The connection string in `file` (`~` expanded).
fn read_credentials_file(file: &str) -> Result<ConnectionString, PluginError> {
    let refused = |why: &str| {
        PluginError::new(
            ErrorKind::Config,
            format!("plugin {NAME}: azure_credentials_file {file}: {why}"),
        )
    };
    let text = std::fs::read_to_string(expand_home(file)).map_err(|e| refused(&e.to_string()))?;
    ConnectionString::parse_gitlab_azure_config(&text)
        .or_else(|| ConnectionString::parse(&text))
        .ok_or_else(|| {
            refused(
                "no connection string in it (AccountName=...;AccountKey=... or \
                 SharedAccessSignature=...), nor GitLab's azure_config \
                 (azure_storage_account_name:, azure_storage_access_key:)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file_with(text: &str) -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("azure");
        std::fs::write(&file, text).unwrap();
        let overrides = Overrides {
            credentials_file: Some(file.display().to_string()),
            ..Overrides::default()
        };
        (dir, overrides)
    }

    #[test]
    fn a_connection_string_file_brings_account_key_and_endpoint() {
        let (_dir, overrides) = file_with(
            "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5a2V5==;\
             BlobEndpoint=http://127.0.0.1:10000/acct/;\n",
        );
        let settings = AzureSettings::resolve(&overrides, &no_env).unwrap();
        assert_eq!(settings.account.as_deref(), Some("acct"));
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/acct")
        );
        assert!(settings.credential == Some(StaticCredential::Key("a2V5a2V5==".into())));
        assert_eq!(settings.secrets(), ["a2V5a2V5=="]);
        assert!(!format!("{settings:?}").contains("a2V5a2V5"));
    }

    #[test]
    fn gitlabs_azure_config_brings_account_key_and_domain() {
        let (_dir, overrides) = file_with(
            "# written by the chart\nazure_storage_account_name: gitlabacct\nazure_storage_access_key: \"a2V5a2V5==\"\nazure_storage_domain: blob.core.chinacloudapi.cn\n",
        );
        let settings = AzureSettings::resolve(&overrides, &no_env).unwrap();
        assert_eq!(settings.account.as_deref(), Some("gitlabacct"));
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("https://gitlabacct.blob.core.chinacloudapi.cn")
        );
        assert_eq!(settings.secrets(), ["a2V5a2V5=="]);
    }

    #[test]
    fn an_endpoint_suffix_makes_the_endpoint() {
        let (_dir, overrides) = file_with(
            "DefaultEndpointsProtocol=https;AccountName=acct;\
             SharedAccessSignature=sv=2023-11-03&sig=a%2Bb%3D;EndpointSuffix=core.chinacloudapi.cn",
        );
        let settings = AzureSettings::resolve(&overrides, &no_env).unwrap();
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
        assert_eq!(
            settings.secrets(),
            ["sv=2023-11-03&sig=a%2Bb%3D", "a%2Bb%3D", "a+b="]
        );
    }

    #[test]
    fn a_file_without_a_connection_string_is_a_config_error_that_quotes_nothing() {
        let (_dir, overrides) = file_with("s3cr3t\n");
        let error = AzureSettings::resolve(&overrides, &no_env).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("azure_credentials_file"), "{error}");
        assert!(!error.message.contains("s3cr3t"), "{error}");
        let missing = Overrides {
            credentials_file: Some("/nonexistent/azure".into()),
            ..Overrides::default()
        };
        let error = AzureSettings::resolve(&missing, &no_env).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }

    #[test]
    fn the_file_wins_over_the_environment_and_the_table_over_both() {
        let env = |name: &str| match name {
            "AZURE_STORAGE_ACCOUNT_NAME" => Some("envacct".to_string()),
            "AZURE_STORAGE_ACCOUNT_KEY" => Some("ZW52a2V5".to_string()),
            "AZURE_STORAGE_CONNECTION_STRING" => {
                Some("AccountName=connacct;AccountKey=Y29ubg==".to_string())
            }
            _ => None,
        };
        let settings = AzureSettings::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(settings.source, "AZURE_STORAGE_ACCOUNT_KEY");
        assert_eq!(settings.account.as_deref(), Some("envacct"));
        assert_eq!(settings.secrets(), ["ZW52a2V5"]);

        let (_dir, mut overrides) = file_with("AccountName=fileacct;AccountKey=ZmlsZQ==");
        let settings = AzureSettings::resolve(&overrides, &env).unwrap();
        assert_eq!(settings.account.as_deref(), Some("fileacct"));
        assert_eq!(settings.secrets(), ["ZmlsZQ=="]);

        overrides.account = Some("tableacct".into());
        overrides.endpoint = Some("https://blob.example.com".into());
        let settings = AzureSettings::resolve(&overrides, &env).unwrap();
        assert_eq!(settings.account.as_deref(), Some("tableacct"));
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("https://blob.example.com")
        );
    }

    #[test]
    fn the_connection_string_variable_comes_after_the_key_and_sas_variables() {
        let env = |name: &str| match name {
            "AZURE_STORAGE_CONNECTION_STRING" => {
                Some("AccountName=connacct;SharedAccessSignature=sig=abc".to_string())
            }
            _ => None,
        };
        let settings = AzureSettings::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(settings.source, "AZURE_STORAGE_CONNECTION_STRING");
        assert_eq!(settings.account.as_deref(), Some("connacct"));
        assert!(settings.credential == Some(StaticCredential::Sas("sig=abc".into())));
    }

    #[test]
    fn no_credential_anywhere_leaves_it_to_object_store() {
        let settings = AzureSettings::resolve(&Overrides::default(), &no_env).unwrap();
        assert!(settings.credential.is_none());
        assert!(settings.source.starts_with("object_store's chain"));
        assert!(settings.secrets().is_empty());
    }
}
