//! Azure Blob Storage: `az://container/prefix` (also `azure://`), through
//! object_store's Azure client. The settings come from the table, a
//! connection-string file and the `AZURE_*` environment
//! ([`credentials`]).
//!
//! Checksums: Azure ETags are never MD5s, and object_store's listing
//! keeps neither the `Content-MD5` Azure computes for a single Put Blob
//! nor metadata. So this backend lists with a request of its own, List
//! Blobs with `include=metadata` ([`requests`], [`listing`]): the MD5 is
//! the listed `Content-MD5`, else the `md5chksum` metadata every upload
//! stores (multipart uploads, Put Block List, have no `Content-MD5`:
//! object_store sends no `x-ms-blob-content-md5` and has no attribute for
//! it). One request per 5,000 blobs, no HEAD per object, whatever the
//! credential: the requests are authorized with the store's own.
//!
//! Copies within a container are object_store's Copy Blob (Azurite runs
//! it synchronously; it has no Put Blob From URL, which object_store uses
//! only with customer-provided keys); between containers they stream
//! through the process with the MD5 in the metadata.

mod credentials;
mod listing;
mod requests;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use object_store::azure::{
    AzureConfigKey, AzureCredentialProvider, MicrosoftAzure, MicrosoftAzureBuilder,
};
use object_store::{ClientOptions, ObjectStore};
use stowage_plugin_api::{ConfigKey, ConfigKind, ErrorKind, PluginError};

use crate::backend::{Backend, PageSpan};
use crate::config::{check_endpoint, ObjstoreConfig};
use crate::store::{Errors, Listed};
use crate::NAME;
use credentials::{AzureSettings, Overrides, StaticCredential};
use requests::Account;

/// The Azure keys of the config table.
pub fn options() -> Vec<ConfigKey> {
    vec![
        ConfigKey::new(
            "azure_account",
            ConfigKind::String,
            "The storage account; unset: the credentials file's AccountName, else \
             $AZURE_STORAGE_ACCOUNT_NAME.",
        ),
        ConfigKey::new(
            "azure_endpoint",
            ConfigKind::String,
            "The blob service URL (http only on loopback; an emulator's with the account \
             path, http://127.0.0.1:10000/ACCOUNT); unset: the credentials file's \
             BlobEndpoint, else $AZURE_STORAGE_ENDPOINT, else \
             https://ACCOUNT.blob.core.windows.net.",
        ),
        ConfigKey::new(
            "azure_credentials_file",
            ConfigKind::Path,
            "A file holding a connection string (AccountName=...;AccountKey=... or \
             ...;SharedAccessSignature=..., as `az storage account show-connection-string -o \
             tsv` prints it); unset: $AZURE_STORAGE_ACCOUNT_KEY, else $AZURE_STORAGE_SAS_TOKEN, \
             else $AZURE_STORAGE_CONNECTION_STRING, else object_store's chain (service \
             principal, workload or managed identity, az CLI).",
        ),
    ]
}

/// The Azure Blob provider.
pub struct AzureBackend {
    settings: AzureSettings,
    /// The credential every store of this backend shares, from the first
    /// store built (one token cache for the chain's tokens).
    credentials: OnceLock<AzureCredentialProvider>,
}

impl std::fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBackend")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AzureBackend {
    /// Its settings, from the table's `azure_*` keys, the environment and
    /// the credentials file.
    pub fn new(
        config: &ObjstoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AzureBackend, PluginError> {
        let overrides = Overrides {
            account: config.azure_account.clone(),
            endpoint: config.azure_endpoint.clone(),
            credentials_file: config.azure_credentials_file.clone(),
        };
        let settings = AzureSettings::resolve(&overrides, env)?;
        if let Some(endpoint) = &settings.endpoint {
            check_endpoint("azure_endpoint", endpoint)?;
        }
        Ok(AzureBackend {
            settings,
            credentials: OnceLock::new(),
        })
    }

    /// The storage account's name, or a config error naming where to set it.
    fn account_name(&self) -> Result<&str, PluginError> {
        self.settings.account.as_deref().ok_or_else(|| {
            PluginError::new(
                ErrorKind::Config,
                format!(
                    "plugin {NAME}: no Azure storage account: set azure_account, \
                     $AZURE_STORAGE_ACCOUNT_NAME, or a connection string with AccountName"
                ),
            )
        })
    }

    /// The blob service URL, no trailing `/`.
    fn endpoint_url(&self, account: &str) -> String {
        self.settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
    }

    /// object_store's Azure client for `container`.
    fn microsoft_azure(
        &self,
        container: &str,
        client: &ClientOptions,
    ) -> Result<MicrosoftAzure, PluginError> {
        let account = self.account_name()?;
        // The chain reads the AZURE_* environment; a credential found here
        // is the only one.
        let mut builder = match &self.settings.credential {
            None => MicrosoftAzureBuilder::from_env(),
            Some(_) => MicrosoftAzureBuilder::new(),
        }
        .with_client_options(client.clone())
        .with_account(account)
        .with_container_name(container)
        .with_endpoint(self.endpoint_url(account))
        // After the client options, which hold it.
        .with_allow_http(self.endpoint_url(account).starts_with("http://"));
        builder = match (self.credentials.get(), &self.settings.credential) {
            (Some(shared), _) => builder.with_credentials(Arc::clone(shared)),
            (None, Some(StaticCredential::Key(key))) => builder.with_access_key(key),
            (None, Some(StaticCredential::Sas(sas))) => {
                builder.with_config(AzureConfigKey::SasKey, sas)
            }
            (None, None) => builder,
        };
        let store = builder.build().map_err(|e| {
            let error = Errors::new(self.secrets()).convert(&format!("container {container}"), e);
            PluginError::new(ErrorKind::Config, error.message)
        })?;
        let _ = self.credentials.set(Arc::clone(store.credentials()));
        Ok(store)
    }

    /// The account, for requests of the plugin's own about `container`,
    /// authorized with the stores' credential and sent by `http`.
    async fn account<'a>(
        &self,
        container: &str,
        http: &'a reqwest::Client,
        errors: &'a Errors,
    ) -> Result<Account<'a>, PluginError> {
        let provider = match self.credentials.get() {
            Some(provider) => Arc::clone(provider),
            None => Arc::clone(
                self.microsoft_azure(container, &ClientOptions::new())?
                    .credentials(),
            ),
        };
        let credential = provider
            .get_credential()
            .await
            .map_err(|e| errors.convert("cannot get an Azure credential", e))?;
        let name = self.account_name()?;
        Ok(Account {
            name: name.to_string(),
            endpoint: self.endpoint_url(name),
            credential,
            http,
            errors,
        })
    }
}

impl Backend for AzureBackend {
    fn schemes(&self) -> &'static [&'static str] {
        &["az", "azure"]
    }

    fn store(
        &self,
        bucket: &str,
        client: &ClientOptions,
    ) -> Result<Arc<dyn ObjectStore>, PluginError> {
        Ok(Arc::new(self.microsoft_azure(bucket, client)?))
    }

    fn endpoint(&self) -> String {
        let account = self.settings.account.as_deref().unwrap_or("(no account)");
        format!(
            "{} (account {account}), credentials from {}",
            self.endpoint_url(account),
            self.settings.source
        )
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
            let account = self.account(bucket, http, errors).await?;
            account.ensure_container(bucket).await
        })
    }

    /// Azure ETags are never MD5s.
    fn etag_md5(&self, _etag: &str) -> Option<String> {
        None
    }

    fn list<'a>(
        &'a self,
        _store: &'a dyn ObjectStore,
        bucket: &'a str,
        prefix: &'a str,
        http: &'a reqwest::Client,
        _concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(async move {
            let account = self.account(bucket, http, errors).await?;
            account.list(bucket, prefix).await
        })
    }

    /// Azure's listing cannot start after a key the way the plugin lists
    /// (its own List Blobs requests, for `Content-MD5` and metadata: a
    /// `marker` is the server's own token, not a key). So a page is cut out
    /// of one whole listing, and an instance that serves a container (an
    /// account is set) does not claim to page.
    fn lists_pages(&self) -> bool {
        self.settings.account.is_none()
    }

    fn list_page<'a>(
        &'a self,
        store: &'a dyn ObjectStore,
        bucket: &'a str,
        span: PageSpan<'a>,
        http: &'a reqwest::Client,
        concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(async move {
            let mut listed = self
                .list(store, bucket, span.prefix, http, concurrency, errors)
                .await?;
            // Its listing's prefix is a string prefix ("a" lists "ab"):
            // only the keys below the prefix's "directory" are the page's.
            let below = |key: &str| {
                span.prefix.is_empty()
                    || key
                        .strip_prefix(span.prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            };
            listed.retain(|object| below(&object.key) && object.key.as_str() > span.after);
            listed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            listed.truncate(span.limit);
            Ok(listed)
        })
    }

    fn list_keys<'a>(
        &'a self,
        _store: &'a dyn ObjectStore,
        bucket: &'a str,
        keys: &'a [String],
        http: &'a reqwest::Client,
        concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(async move {
            let account = self.account(bucket, http, errors).await?;
            account.list_keys(bucket, keys, concurrency).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_account_a_container_is_a_config_error() {
        let backend = AzureBackend::new(&ObjstoreConfig::default(), &|_| None).unwrap();
        let error = backend.store("c", &ClientOptions::new()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("azure_account"), "{error}");
    }

    #[test]
    fn a_backend_that_serves_containers_does_not_claim_to_page() {
        let unset = AzureBackend::new(&ObjstoreConfig::default(), &|_| None).unwrap();
        assert!(
            unset.lists_pages(),
            "no account: no container to hold paging back"
        );
        let config = ObjstoreConfig {
            azure_account: Some("acct".into()),
            ..ObjstoreConfig::default()
        };
        let serving = AzureBackend::new(&config, &|_| None).unwrap();
        assert!(!serving.lists_pages());
    }

    #[test]
    fn plain_http_is_for_an_emulator_on_loopback_only() {
        let config = |endpoint: &str| ObjstoreConfig {
            azure_account: Some("acct".into()),
            azure_endpoint: Some(endpoint.into()),
            ..ObjstoreConfig::default()
        };
        let env = |name: &str| (name == "AZURE_STORAGE_ACCOUNT_KEY").then(|| "a2V5".to_string());
        // What from_config does before any client is built.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let local = AzureBackend::new(&config("http://127.0.0.1:10000/acct/"), &env).unwrap();
        local.store("c", &ClientOptions::new()).unwrap();
        assert!(local
            .endpoint()
            .starts_with("http://127.0.0.1:10000/acct (account acct)"));
        let error = AzureBackend::new(&config("http://blob.lan/acct"), &env).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("azure_endpoint"), "{error}");
    }
}
