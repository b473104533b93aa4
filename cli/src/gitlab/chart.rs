//! The environment the GitLab Helm chart gives `backup-utility`, read the
//! way backup-utility reads it.
//!
//! Sources (quoted in `docs/GITLAB.md`): the chart's
//! `charts/gitlab/charts/toolbox/templates/backup-job.yaml` and
//! `deployment.yaml` set `<COMPONENT>_BUCKET_NAME`, `BACKUP_BUCKET_NAME`,
//! `TMP_BUCKET_NAME` and `BACKUP_BACKEND`; CNG's
//! `gitlab-toolbox/scripts/bin/object-storage-backup` reads a component's
//! bucket as `ENV["#{name.upcase}_BUCKET_NAME"] || "gitlab-#{name}"` and the
//! tmp bucket as `TMP_BUCKET_NAME || 'tmp'`; `backup-utility` defaults
//! `BACKUP_BUCKET_NAME` to `gitlab-backups`. The names are bare bucket
//! names; the backend gives their scheme.

use std::path::{Path, PathBuf};

use stowage_plugin_api::Location;

use crate::config::{default_staging_dir, Component, Settings};

/// The object-storage components backup-utility backs up and restores, in
/// its order (`object_storage_backends` in CNG's backup-utility).
pub const OBJECT_STORAGE_COMPONENTS: [&str; 9] = [
    "registry",
    "uploads",
    "artifacts",
    "lfs",
    "packages",
    "external_diffs",
    "terraform_state",
    "pages",
    "ci_secure_files",
];

/// The components backup-utility hands to GitLab's rake tasks
/// (`gitlab:backup:db`, `:repo`, `:builds`); `--skip` takes them too.
pub const RAKE_COMPONENTS: [&str; 3] = ["db", "repositories", "builds"];

/// The label of the archives the command makes:
/// `<unix-ts>_<YYYY_MM_DD>_stowage_gitlab_backup.tar`, which is GitLab's
/// `<backup ID>_gitlab_backup.tar` with the ID `<unix-ts>_<YYYY_MM_DD>_stowage`.
pub const LABEL: &str = "stowage_gitlab";

/// Stowage's own variable: when set (e.g. `file:///srv/buckets`), a bucket
/// named `NAME` is `<root>/NAME` instead of `<scheme>://NAME`. For tests and
/// local trials on the fs plugin; the chart does not set it.
pub const BUCKET_ROOT_VARIABLE: &str = "STOWAGE_GITLAB_BUCKET_ROOT";

/// Where the chart mounts the toolbox's scratch volume (`toolbox-tmp`),
/// sized for backups; staging goes below it when it is there.
const CHART_TMP_DIR: &str = "/srv/gitlab/tmp";

/// The bucket names and scratch space, as the chart's variables give them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartEnvironment {
    /// `BACKUP_BUCKET_NAME`: where archives go.
    pub backup_bucket: String,
    /// `TMP_BUCKET_NAME`: where a restore puts what it replaces.
    pub tmp_bucket: String,
    /// Each object-storage component and its bucket name.
    pub component_buckets: Vec<(String, String)>,
    /// `STOWAGE_GITLAB_BUCKET_ROOT`, if set.
    pub bucket_root: Option<String>,
    /// `STOWAGE_STAGING_DIR`, else `/srv/gitlab/tmp/stowage` in the
    /// toolbox, else Stowage's default.
    pub staging_dir: PathBuf,
}

impl ChartEnvironment {
    /// Reads the process environment.
    pub fn from_env() -> ChartEnvironment {
        ChartEnvironment::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var` (an empty value counts as unset).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> ChartEnvironment {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let component_buckets = OBJECT_STORAGE_COMPONENTS
            .iter()
            .map(|name| {
                let variable = format!("{}_BUCKET_NAME", name.to_ascii_uppercase());
                let bucket = var(&variable).unwrap_or_else(|| format!("gitlab-{name}"));
                (name.to_string(), bucket)
            })
            .collect();
        let staging_dir = match var("STOWAGE_STAGING_DIR") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new(CHART_TMP_DIR).is_dir() => Path::new(CHART_TMP_DIR).join("stowage"),
            None => default_staging_dir(),
        };
        ChartEnvironment {
            backup_bucket: var("BACKUP_BUCKET_NAME").unwrap_or_else(|| "gitlab-backups".into()),
            tmp_bucket: var("TMP_BUCKET_NAME").unwrap_or_else(|| "tmp".into()),
            component_buckets,
            bucket_root: var(BUCKET_ROOT_VARIABLE),
            staging_dir,
        }
    }

    /// The bucket called `name`: `<scheme>://name`, or below the bucket root.
    fn bucket(&self, scheme: &str, name: &str) -> Location {
        match &self.bucket_root {
            Some(root) => Location::parse(&format!("{}/{name}", root.trim_end_matches('/'))),
            None => Location::parse(&format!("{scheme}://{name}")),
        }
    }

    /// Stowage's settings for buckets of `scheme`: every object-storage
    /// component (in name order), the backup bucket as the destination, the tmp bucket,
    /// the label [`LABEL`]. No stowage.toml is read.
    pub fn settings(&self, scheme: &str) -> Settings {
        let mut components: Vec<Component> = self
            .component_buckets
            .iter()
            .map(|(name, bucket)| Component {
                name: name.clone(),
                bucket: self.bucket(scheme, bucket),
                excludes: Vec::new(),
            })
            .collect();
        // Settings hold components in name order.
        components.sort_by(|a, b| a.name.cmp(&b.name));
        Settings {
            label: Some(LABEL.to_string()),
            destination: self.bucket(scheme, &self.backup_bucket),
            tmp_bucket: Some(self.bucket(scheme, &self.tmp_bucket)),
            staging_dir: self.staging_dir.clone(),
            components,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> ChartEnvironment {
        ChartEnvironment::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn the_charts_variables_name_the_buckets_and_the_backend_gives_the_scheme() {
        let env = environment(&[
            ("BACKUP_BUCKET_NAME", "gitlab-backup-storage"),
            ("TMP_BUCKET_NAME", "gitlab-tmp-storage"),
            ("LFS_BUCKET_NAME", "git-lfs"),
            ("EXTERNAL_DIFFS_BUCKET_NAME", "gitlab-mr-diffs"),
            ("STOWAGE_STAGING_DIR", "/scratch"),
        ]);
        let settings = env.settings("gs");
        assert_eq!(
            settings.destination.to_string(),
            "gs://gitlab-backup-storage"
        );
        assert_eq!(
            settings.tmp_bucket.unwrap().to_string(),
            "gs://gitlab-tmp-storage"
        );
        assert_eq!(settings.label.as_deref(), Some("stowage_gitlab"));
        assert_eq!(settings.staging_dir, PathBuf::from("/scratch"));
        let bucket = |name: &str| {
            settings
                .components
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .bucket
                .to_string()
        };
        assert_eq!(bucket("lfs"), "gs://git-lfs");
        assert_eq!(bucket("external_diffs"), "gs://gitlab-mr-diffs");
        assert_eq!(settings.components.len(), OBJECT_STORAGE_COMPONENTS.len());
    }

    #[test]
    fn unset_or_empty_variables_take_backup_utilitys_defaults() {
        let settings = environment(&[("UPLOADS_BUCKET_NAME", "")]).settings("s3");
        assert_eq!(settings.destination.to_string(), "s3://gitlab-backups");
        assert_eq!(settings.tmp_bucket.unwrap().to_string(), "s3://tmp");
        let uploads = settings
            .components
            .iter()
            .find(|c| c.name == "uploads")
            .unwrap();
        assert_eq!(uploads.bucket.to_string(), "s3://gitlab-uploads");
    }

    #[test]
    fn a_bucket_root_puts_every_bucket_below_it() {
        let settings =
            environment(&[(BUCKET_ROOT_VARIABLE, "file:///srv/buckets/")]).settings("s3");
        assert_eq!(
            settings.destination.to_string(),
            "file:///srv/buckets/gitlab-backups"
        );
        assert_eq!(
            settings.components[0].bucket.to_string(),
            "file:///srv/buckets/gitlab-artifacts"
        );
    }
}
