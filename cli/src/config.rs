//! The backup config (`stowage.toml`): components and where backups go.
//!
//! ```toml
//! label = "stowage_gitlab"                  # archive label
//! backup_destination = "s3://gitlab-backups"  # a bucket URL or a local directory
//! tmp_bucket = "s3://tmp"                   # restore snapshots go below it
//! staging_dir = "/var/lib/stowage"          # persistent working space
//!
//! [components.artifacts]
//! bucket = "s3://gitlab-artifacts"
//! excludes = ["tmp/builds/*"]
//! ```
//!
//! Every key can be overridden: `--label` / `STOWAGE_LABEL`,
//! `--destination` / `STOWAGE_BACKUP_DESTINATION`, `--tmp-bucket` /
//! `STOWAGE_TMP_BUCKET`, `--staging-dir` / `STOWAGE_STAGING_DIR`, and a
//! component's bucket with `--bucket NAME=URL` / `STOWAGE_BUCKET_<NAME>`.
//! Relative paths in the file are relative to the file.

// The doc comments of the clap items are their --help text, where
// `<component>` and the like are meant as written, not as HTML.
#![allow(rustdoc::invalid_html_tags)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::Args;
use serde::Deserialize;
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::remove_abandoned_partials;
use stowage_plugin_api::Location;

use crate::exit::ConfigError;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    label: Option<String>,
    backup_destination: Option<String>,
    tmp_bucket: Option<String>,
    staging_dir: Option<PathBuf>,
    #[serde(default)]
    components: BTreeMap<String, ComponentEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentEntry {
    bucket: String,
    #[serde(default)]
    excludes: Vec<String>,
}

/// The flags (and environment variables) that override the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// The backup config. Default: ./stowage.toml.
    #[arg(long, env = "STOWAGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Archive label (the name is <unix-ts>_<YYYY_MM_DD>_<label>_backup.tar).
    #[arg(long, env = "STOWAGE_LABEL")]
    pub label: Option<String>,
    /// Where archives go: a bucket URL or a local directory.
    #[arg(long, env = "STOWAGE_BACKUP_DESTINATION", value_name = "URL|DIR")]
    pub destination: Option<String>,
    /// The bucket restore snapshots go below (<tmp>/<component>.<unix-ts>/).
    #[arg(long, env = "STOWAGE_TMP_BUCKET", value_name = "URL")]
    pub tmp_bucket: Option<String>,
    /// Persistent working directory (bucket mirrors, downloads, extraction).
    /// Default: $XDG_CACHE_HOME/stowage, else ~/.cache/stowage.
    #[arg(long, env = "STOWAGE_STAGING_DIR", value_name = "DIR")]
    pub staging_dir: Option<PathBuf>,
    /// A component's bucket, overriding the file: NAME=URL. Repeatable.
    /// Also STOWAGE_BUCKET_<NAME> in the environment.
    #[arg(long = "bucket", value_name = "NAME=URL")]
    pub buckets: Vec<String>,
}

/// One component: a bucket and what to leave out of it.
#[derive(Debug, Clone)]
pub struct Component {
    /// Its name (`uploads`, `artifacts`, ...), also its tarball's name.
    pub name: String,
    /// The bucket.
    pub bucket: Location,
    /// Exclude globs, relative to the bucket.
    pub excludes: Vec<String>,
}

/// What a run needs besides a backup destination and components.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// A tmp bucket (a restore that snapshots).
    pub tmp_bucket: bool,
}

/// The staging directory when none is set: `$XDG_CACHE_HOME/stowage`, else
/// `~/.cache/stowage`, else `stowage` in the system's temporary directory.
pub fn default_staging_dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(cache) = set("XDG_CACHE_HOME") {
        PathBuf::from(cache).join("stowage")
    } else if let Some(home) = set("HOME") {
        PathBuf::from(home).join(".cache/stowage")
    } else {
        std::env::temp_dir().join("stowage")
    }
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Archive label: a backup names its archive with it. Only a backup
    /// needs one (see [`Settings::label`]).
    pub label: Option<String>,
    /// Where archives go.
    pub destination: Location,
    /// Where restore snapshots go, if set.
    pub tmp_bucket: Option<Location>,
    /// The working directory.
    pub staging_dir: PathBuf,
    /// Components, in name order.
    pub components: Vec<Component>,
}

fn config_error(message: String) -> anyhow::Error {
    ConfigError(message).into()
}

/// Whether `name` is usable as a component name (and tarball file name).
pub fn valid_component_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Settings {
    /// Removes what runs killed mid-write left (see
    /// [`stowage_local_tree::PARTIAL_SUFFIX`]) in the
    /// directories Stowage writes into: staging, and a local backup
    /// destination. Buckets are cleaned as they are walked.
    pub fn remove_abandoned_partials(&self) {
        remove_abandoned_partials(&self.staging_dir);
        if let Location::Local { path } = &self.destination {
            remove_abandoned_partials(Path::new(path.as_str()));
        }
    }

    /// Reads the config file (if any) and applies the overrides.
    pub fn resolve(args: &ConfigArgs) -> Result<Settings> {
        Settings::resolve_needing(args, Needs::default())
    }

    /// [`Settings::resolve`], `needs` saying what the run needs besides
    /// what every run does (a backup destination and components); every
    /// missing setting is named in one error.
    pub fn resolve_needing(args: &ConfigArgs, needs: Needs) -> Result<Settings> {
        let default_path = Path::new("stowage.toml");
        let path = args
            .config
            .as_deref()
            .or(default_path.is_file().then_some(default_path));
        let (file, base) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    config_error(format!("cannot read config {}: {e}", path.display()))
                })?;
                let file: ConfigFile = toml::from_str(&text).map_err(|e| {
                    config_error(format!(
                        "config {} is not valid{}",
                        path.display(),
                        toml_problem(&text, &e)
                    ))
                })?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (file, base)
            }
            None => (ConfigFile::default(), PathBuf::new()),
        };
        let relative_to_file = |p: &str| -> String {
            match Location::parse(p) {
                Location::Local { .. } if Path::new(p).is_relative() => {
                    base.join(p).to_string_lossy().into_owned()
                }
                _ => p.to_string(),
            }
        };
        // Every setting the run lacks, reported together.
        let mut missing: Vec<&str> = Vec::new();
        let label = args.label.clone().or(file.label);
        if let Some(label) = &label {
            if label.is_empty()
                || label.contains(['/', '\\'])
                || label.chars().any(char::is_whitespace)
            {
                return Err(config_error(format!(
                    "label {label:?} must be non-empty, without '/' or spaces"
                )));
            }
        }
        let destination = args
            .destination
            .clone()
            .or(file.backup_destination.map(|d| relative_to_file(&d)));
        if destination.is_none() {
            missing.push(
                "the backup destination (backup_destination in stowage.toml, or --destination): \
                 archives and restore locks live there",
            );
        }
        let staging_dir = args
            .staging_dir
            .clone()
            .or(file.staging_dir.map(|d| base.join(d)))
            .unwrap_or_else(default_staging_dir);
        let tmp_bucket = args
            .tmp_bucket
            .clone()
            .or(file.tmp_bucket)
            .map(|t| Location::parse(&t));
        if needs.tmp_bucket && tmp_bucket.is_none() {
            missing.push(
                "the tmp bucket for restore snapshots (tmp_bucket in stowage.toml, or --tmp-bucket; \
                 or --snapshot none --yes)",
            );
        }

        let mut buckets: BTreeMap<String, (String, Vec<String>)> = file
            .components
            .into_iter()
            .map(|(name, c)| (name, (c.bucket, c.excludes)))
            .collect();
        for name in buckets.keys().cloned().collect::<Vec<_>>() {
            if let Ok(url) = std::env::var(format!("STOWAGE_BUCKET_{}", name.to_ascii_uppercase()))
            {
                buckets.get_mut(&name).expect("listed above").0 = url;
            }
        }
        for pair in &args.buckets {
            let (name, url) = pair
                .split_once('=')
                .ok_or_else(|| config_error(format!("--bucket {pair:?}: expected NAME=URL")))?;
            buckets.entry(name.to_string()).or_default().0 = url.to_string();
        }
        let components = buckets
            .into_iter()
            .map(|(name, (bucket, excludes))| {
                if !valid_component_name(&name) {
                    return Err(config_error(format!(
                        "component name {name:?}: use letters, digits, '_' and '-'"
                    )));
                }
                let location = Location::parse(&bucket);
                if location.remote().is_none() {
                    return Err(config_error(format!(
                        "component {name}: bucket {bucket:?} is not a URL (s3://, gs://, file:///)"
                    )));
                }
                ExcludeMatcher::new(&excludes)
                    .map_err(|e| config_error(format!("component {name}: {e}")))?;
                Ok(Component {
                    name,
                    bucket: location,
                    excludes,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if components.is_empty() {
            missing.push("components ([components.NAME] in stowage.toml, or --bucket NAME=URL)");
        }
        let Some(destination) = destination.filter(|_| missing.is_empty()) else {
            return Err(config_error(format!("missing: {}", missing.join("; "))));
        };
        Ok(Settings {
            label,
            destination: Location::parse(&destination),
            tmp_bucket,
            staging_dir,
            components,
        })
    }

    /// The label, which a backup names its archive with.
    pub fn label(&self) -> Result<&str> {
        self.label.as_deref().ok_or_else(|| {
            config_error("no label: set label in stowage.toml, or --label".to_string())
        })
    }

    /// The components `only` names (all when empty), less those in `skip`;
    /// an unknown name is an error.
    pub fn select(&self, only: &[String], skip: &[String]) -> Result<Vec<Component>> {
        for name in only.iter().chain(skip) {
            if !self.components.iter().any(|c| &c.name == name) {
                return Err(anyhow!(ConfigError(format!(
                    "unknown component {name:?}; configured: {}",
                    self.components
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))));
            }
        }
        Ok(self
            .components
            .iter()
            .filter(|c| only.is_empty() || only.contains(&c.name))
            .filter(|c| !skip.contains(&c.name))
            .cloned()
            .collect())
    }
}
/// Where a TOML file of `text` went wrong and how, on one line:
/// ` (line 3, column 9): invalid basic string`. The offending line is not
/// quoted: it may hold a secret.
pub fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let place = error
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .chars()
                .count()
                + 1;
            format!(" (line {line}, column {column})")
        })
        .unwrap_or_default();
    let message: Vec<&str> = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    format!("{place}: {}", message.join(", "))
}
