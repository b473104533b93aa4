//! backup-utility's `--backend` and `--s3tool`, and the flags that
//! configure its tools, carried to Stowage's plugins.
//!
//! backup-utility picks a tool per run (`s3cmd`, `aws`, `gsutil`,
//! `azcopy`); Stowage picks a plugin per URL scheme in `plugins.toml`. So
//! `--backend` chooses the scheme the chart's bare bucket names get, and
//! `--s3tool` which plugin serves `s3://` for this run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use crate::exit::ConfigError;
use crate::plugins_file::PluginsFile;

/// `--backend` / `BACKUP_BACKEND`: where the buckets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// S3 or an S3-compatible store (MinIO): `s3://`.
    S3,
    /// Google Cloud Storage: `gs://`.
    Gcs,
    /// Azure Blob Storage: `az://`, served by the `objstore` plugin unless
    /// plugins.toml maps `az` to another.
    Azure,
}

impl Backend {
    /// The URL scheme its buckets get.
    pub fn scheme(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Gcs => "gs",
            Backend::Azure => "az",
        }
    }
}

/// `--s3tool` / `S3_TOOL`: the tool for `s3://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum S3Tool {
    /// s3cmd: the `s3cmd` plugin.
    S3cmd,
    /// The AWS CLI: the `aws` plugin.
    Awscli,
    /// s5cmd, a parallel native client: Stowage has no s5cmd plugin; its
    /// own native client, the `objstore` plugin, stands in.
    S5cmd,
}

impl S3Tool {
    /// The Stowage plugin that does its job.
    pub fn plugin(self) -> &'static str {
        match self {
            S3Tool::S3cmd => "s3cmd",
            S3Tool::Awscli => "aws",
            S3Tool::S5cmd => "objstore",
        }
    }
}

/// Where the chart's toolbox has s3cmd's config (its init container writes
/// it there; the backup job copies it to `~/.s3cfg` before backup-utility).
const CHART_S3CFG: &str = "/etc/gitlab/.s3cfg";

/// The tool choices and tool settings of one run.
#[derive(Clone, Debug, Default)]
pub struct ToolChoice {
    /// `--backend`.
    pub backend: Option<Backend>,
    /// `--s3tool`.
    pub s3tool: Option<S3Tool>,
    /// `--s3config`: s3cmd's config file.
    pub s3config: Option<PathBuf>,
    /// `--aws-s3-endpoint-url`.
    pub aws_endpoint_url: Option<String>,
    /// `--aws-region`.
    pub aws_region: Option<String>,
}

impl ToolChoice {
    /// Applies the choices to the plugins file read for this run: the
    /// plugin serving `s3://`, and the keys of the s3cmd and aws tables.
    /// When nothing names s3cmd's config and `~/.s3cfg` is absent, the
    /// chart's `/etc/gitlab/.s3cfg` is used.
    pub fn apply(&self, file: &mut PluginsFile) -> Result<()> {
        if let (Some(Backend::S3) | None, Some(tool)) = (self.backend, self.s3tool) {
            file.schemes.insert("s3".into(), tool.plugin().into());
        }
        if self.backend == Some(Backend::Azure) {
            self.apply_azure(file)?;
        }
        let s3config = self.s3config.clone().or_else(|| chart_s3cfg(file));
        if let Some(path) = s3config {
            set_key(
                file,
                "--s3config",
                "s3cmd",
                "config_file",
                path.display().to_string(),
            )?;
        }
        if let Some(url) = &self.aws_endpoint_url {
            set_key(
                file,
                "--aws-s3-endpoint-url",
                "aws",
                "endpoint_url",
                url.clone(),
            )?;
        }
        if let Some(region) = &self.aws_region {
            set_key(file, "--aws-region", "aws", "region", region.clone())?;
        }
        Ok(())
    }
}

impl ToolChoice {
    /// For `--backend azure`: `az://` served by the native `objstore`
    /// plugin when plugins.toml maps `az` to none, and its credentials
    /// from the chart's `AZURE_CONFIG_FILE` (GitLab's `azure_config`) when
    /// its table names no file.
    fn apply_azure(&self, file: &mut PluginsFile) -> Result<()> {
        if !file.schemes.contains_key("az") && file.plugins.contains_key("objstore") {
            file.schemes.insert("az".into(), "objstore".into());
        }
        let Some(config) = std::env::var_os("AZURE_CONFIG_FILE") else {
            return Ok(());
        };
        let plugin = file.schemes.get("az").cloned().unwrap_or_default();
        let named = file
            .plugins
            .get(&plugin)
            .is_some_and(|p| p.config.contains_key("azure_credentials_file"));
        if plugin == "objstore" && !named {
            set_key(
                file,
                "AZURE_CONFIG_FILE",
                "objstore",
                "azure_credentials_file",
                PathBuf::from(config).display().to_string(),
            )?;
        }
        Ok(())
    }
}

/// `/etc/gitlab/.s3cfg` when it exists and s3cmd would otherwise find no
/// config: its table names none, `$S3CMD_CONFIG` is unset and there is
/// no `~/.s3cfg`.
fn chart_s3cfg(file: &PluginsFile) -> Option<PathBuf> {
    let table = &file.plugins.get("s3cmd")?.config;
    let home_s3cfg = std::env::var_os("HOME").map(|home| Path::new(&home).join(".s3cfg"));
    let configured = table.contains_key("config_file")
        || std::env::var_os("S3CMD_CONFIG").is_some()
        || home_s3cfg.is_some_and(|p| p.is_file());
    (!configured && Path::new(CHART_S3CFG).is_file()).then(|| PathBuf::from(CHART_S3CFG))
}

/// Sets `key` of plugin `plugin`'s table to `value`, for `flag`.
fn set_key(
    file: &mut PluginsFile,
    flag: &str,
    plugin: &str,
    key: &str,
    value: String,
) -> Result<()> {
    let path = file.path.display().to_string();
    let entry = file.plugins.get_mut(plugin).ok_or_else(|| {
        ConfigError(format!(
            "{flag} configures the {plugin} plugin, which {path} does not list ([plugins.{plugin}])"
        ))
    })?;
    entry.config.insert(key.into(), toml::Value::String(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins_file(text: &str) -> (tempfile::TempDir, PluginsFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.toml");
        std::fs::write(&path, text).unwrap();
        let file = PluginsFile::read(&path).unwrap();
        (dir, file)
    }

    const SHIPPED: &str = "[schemes]\ns3 = \"s3cmd\"\n[plugins.s3cmd]\nlibrary = \"stowage_plugin_s3cmd\"\n[plugins.s3cmd.config]\nconfig_file = \"~/.s3cfg\"\n[plugins.aws]\nlibrary = \"stowage_plugin_aws\"\n";

    #[test]
    fn backends_give_schemes_and_s3_tools_give_plugins() {
        assert_eq!(Backend::S3.scheme(), "s3");
        assert_eq!(Backend::Gcs.scheme(), "gs");
        assert_eq!(Backend::Azure.scheme(), "az");
        assert_eq!(S3Tool::S3cmd.plugin(), "s3cmd");
        assert_eq!(S3Tool::Awscli.plugin(), "aws");
        assert_eq!(S3Tool::S5cmd.plugin(), "objstore");
    }

    #[test]
    fn the_azure_backend_is_served_by_objstore_unless_plugins_toml_says_otherwise() {
        let objstore = "[plugins.objstore]\nlibrary = \"stowage_plugin_objstore\"\n";
        let azure = ToolChoice {
            backend: Some(Backend::Azure),
            ..ToolChoice::default()
        };
        let (_dir, mut file) = plugins_file(&format!("{SHIPPED}{objstore}"));
        azure.apply(&mut file).unwrap();
        assert_eq!(file.schemes["az"], "objstore");

        let mapped =
            format!("[schemes]\naz = \"other\"\n[plugins.other]\nlibrary = \"x\"\n{objstore}");
        let (_dir, mut file) = plugins_file(&mapped);
        azure.apply(&mut file).unwrap();
        assert_eq!(file.schemes["az"], "other");
    }

    #[test]
    fn s3tool_chooses_the_plugin_serving_s3_and_aws_flags_fill_its_table() {
        let (_dir, mut file) = plugins_file(SHIPPED);
        ToolChoice {
            s3tool: Some(S3Tool::Awscli),
            aws_endpoint_url: Some("http://minio:9000".into()),
            aws_region: Some("us-east-1".into()),
            ..ToolChoice::default()
        }
        .apply(&mut file)
        .unwrap();
        assert_eq!(file.schemes["s3"], "aws");
        let aws = &file.plugins["aws"].config;
        assert_eq!(aws["endpoint_url"].as_str(), Some("http://minio:9000"));
        assert_eq!(aws["region"].as_str(), Some("us-east-1"));
    }

    #[test]
    fn s3tool_leaves_other_backends_alone_and_s3config_names_s3cmds_file() {
        let (_dir, mut file) = plugins_file(SHIPPED);
        ToolChoice {
            backend: Some(Backend::Gcs),
            s3tool: Some(S3Tool::Awscli),
            s3config: Some(PathBuf::from("/etc/gitlab/backup.s3cfg")),
            ..ToolChoice::default()
        }
        .apply(&mut file)
        .unwrap();
        assert_eq!(file.schemes["s3"], "s3cmd");
        let s3cmd = &file.plugins["s3cmd"].config;
        assert_eq!(
            s3cmd["config_file"].as_str(),
            Some("/etc/gitlab/backup.s3cfg")
        );
    }

    #[test]
    fn a_flag_for_a_plugin_the_file_does_not_list_is_a_config_error() {
        let (_dir, mut file) = plugins_file("[plugins.s3cmd]\nlibrary = \"x\"\n");
        let error = ToolChoice {
            aws_region: Some("eu-west-1".into()),
            ..ToolChoice::default()
        }
        .apply(&mut file)
        .unwrap_err();
        assert!(error.is::<ConfigError>());
        assert!(error.to_string().contains("--aws-region"), "{error}");
    }
}
