//! The plugin's config table: the keys every provider shares, then each
//! provider's own, prefixed with its name (`s3_`, `gcs_`, ...). No key holds a
//! secret: secrets come from the environment or from files a key names.

use object_store::{Certificate, ClientOptions};
use serde::Deserialize;
use stowage_plugin_api::{ConfigKey, ConfigKind, ErrorKind, PluginError};
use stowage_plugin_support::paths::expand_home;

use crate::NAME;

/// Requests at once when neither the table nor a sync says.
pub const DEFAULT_CONCURRENCY: u32 = 16;

/// Files from this size (MiB) up are uploaded in parts, by default.
pub const DEFAULT_MULTIPART_THRESHOLD_MIB: u64 = 16;

/// MiB of file content all transfers together hold in memory at once, by
/// default.
pub const DEFAULT_TRANSFER_MEMORY_MIB: u32 = 32;

/// The plugin's config table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjstoreConfig {
    /// Requests at once.
    pub concurrency: Option<u32>,
    /// Files of this many MiB or more go up in parts.
    pub multipart_threshold_mib: Option<u64>,
    /// MiB of content all transfers together hold in memory.
    pub transfer_memory_mib: Option<u32>,
    /// PEM file of extra root certificates.
    pub ca_file: Option<String>,
    /// S3: the endpoint URL.
    pub s3_endpoint: Option<String>,
    /// S3: the region.
    pub s3_region: Option<String>,
    /// S3: the profile of the AWS files.
    pub s3_profile: Option<String>,
    /// S3: the AWS config file.
    pub s3_config_file: Option<String>,
    /// S3: the AWS credentials file.
    pub s3_credentials_file: Option<String>,
    /// GCS: a service-account key file.
    pub gcs_service_account_file: Option<String>,
    /// GCS: the XML API's base URL.
    pub gcs_endpoint: Option<String>,
    /// GCS: the project new buckets are created in.
    pub gcs_project: Option<String>,
    /// Azure: the storage account.
    pub azure_account: Option<String>,
    /// Azure: the blob service URL.
    pub azure_endpoint: Option<String>,
    /// Azure: a file holding a connection string.
    pub azure_credentials_file: Option<String>,
}

/// The keys of [`ObjstoreConfig`], as `describe` declares them.
pub fn options() -> Vec<ConfigKey> {
    let shared = vec![
        ConfigKey::new(
            "concurrency",
            ConfigKind::Integer,
            "Requests at once (transfers, copies, MD5 look-ups, delete batches) when a sync \
             does not set its own parallelism.",
        )
        .default(&DEFAULT_CONCURRENCY.to_string()),
        ConfigKey::new(
            "multipart_threshold_mib",
            ConfigKind::Integer,
            "Files of this many MiB or more are uploaded in 8 MiB parts (at least 1).",
        )
        .default(&DEFAULT_MULTIPART_THRESHOLD_MIB.to_string()),
        ConfigKey::new(
            "transfer_memory_mib",
            ConfigKind::Integer,
            "MiB of file content all transfers together hold in memory at once (a file below \
             the multipart threshold is held whole, a multipart transfer holds 24 MiB); \
             transfers wait for room (at least 1).",
        )
        .default(&DEFAULT_TRANSFER_MEMORY_MIB.to_string()),
        ConfigKey::new(
            "ca_file",
            ConfigKind::Path,
            "A PEM file of root certificates to trust besides the system's (a private CA, a \
             self-signed test server); unset: the system's only.",
        ),
    ];
    shared
        .into_iter()
        .chain(crate::backend::s3::options())
        .chain(crate::backend::gcs::options())
        .chain(crate::backend::azure::options())
        .collect()
}

/// Refuses an endpoint that is not an http(s) URL, or plain http to a
/// host other than this machine (credentials would cross the network
/// signed but the data unencrypted). `key` names the table key.
pub fn check_endpoint(key: &str, endpoint: &str) -> Result<(), PluginError> {
    let refused = |why: &str| {
        PluginError::new(
            ErrorKind::Config,
            format!("plugin {NAME}: {key} {endpoint}: {why}"),
        )
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(refused(
            "not a URL; write it as https://host[:port] (http:// only on loopback)",
        ));
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(refused(
            "plain http is allowed only on loopback (localhost, 127.0.0.1, [::1]); use https",
        )),
        _ => Err(refused("the scheme must be https (or http on loopback)")),
    }
}

/// The two HTTP clients of the plugin, trusting the same roots: the
/// system's plus those of `ca_file`.
pub struct Clients {
    /// What object_store builds each store's client from.
    pub options: ClientOptions,
    /// For the requests object_store has no call for (bucket creation).
    pub http: reqwest::Client,
}

impl Clients {
    /// The clients, with the certificates of `ca_file` (a PEM bundle) added.
    pub fn new(ca_file: Option<&str>) -> Result<Clients, PluginError> {
        let mut options = ClientOptions::new();
        let mut http = reqwest::Client::builder();
        if let Some(ca_file) = ca_file {
            let pem = read_ca_file(ca_file)?;
            let refused = |e: &dyn std::fmt::Display| ca_error(ca_file, &e.to_string());
            for certificate in Certificate::from_pem_bundle(&pem).map_err(|e| refused(&e))? {
                options = options.with_root_certificate(certificate);
            }
            for certificate in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| refused(&e))?
            {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| PluginError::new(ErrorKind::Config, format!("plugin {NAME}: {e}")))?;
        Ok(Clients { options, http })
    }
}

/// The bytes of the PEM file `ca_file`, refused when it holds no certificate.
fn read_ca_file(ca_file: &str) -> Result<Vec<u8>, PluginError> {
    let pem = std::fs::read(expand_home(ca_file)).map_err(|e| ca_error(ca_file, &e.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(ca_error(ca_file, "no PEM certificate in it"));
    }
    Ok(pem)
}

fn ca_error(ca_file: &str, why: &str) -> PluginError {
    PluginError::new(
        ErrorKind::Config,
        format!("plugin {NAME}: ca_file {ca_file}: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        assert_declared_options::<ObjstoreConfig>(&options());
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for ok in [
            "https://s3.example.com",
            "http://127.0.0.1:9000",
            "http://localhost:4566/",
            "http://[::1]:9000",
        ] {
            check_endpoint("s3_endpoint", ok).unwrap();
        }
        for refused in ["http://minio.lan:9000", "minio:9000", "ftp://127.0.0.1"] {
            let error = check_endpoint("s3_endpoint", refused).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config, "{refused}");
            assert!(error.message.contains("s3_endpoint"), "{error}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        for ca_file in [file.to_str().unwrap(), "/nonexistent/ca.pem"] {
            let error = Clients::new(Some(ca_file)).err().unwrap();
            assert_eq!(error.kind, ErrorKind::Config, "{ca_file}");
            assert!(error.message.contains("ca_file"), "{error}");
        }
    }
}
