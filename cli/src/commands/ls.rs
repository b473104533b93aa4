//! `stowage ls URL`.

use anyhow::Result;
use clap::Args;
use stowage_plugin_api::{ErrorKind, Location};

use crate::exit::NotFound;
use crate::output::write_json;
use crate::plugin::plugin_error_kind;
use crate::registry::Registry;

/// Arguments of `stowage ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The bucket URL (s3://bucket/prefix, gs://..., file:///path).
    pub url: String,
    /// Use this plugin instead of the one plugins.toml maps the scheme to.
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,
}

/// Lists the objects: `size  md5  key` per line, or JSON. A bucket that
/// does not exist is an error (exit code 6), not an empty listing.
pub fn run(registry: &Registry, args: &LsArgs, json: bool) -> Result<()> {
    let location = Location::parse(&args.url);
    let plugin = registry.for_location(&location, args.plugin.as_deref())?;
    let entries = plugin
        .list(&location)
        .map_err(|e| match plugin_error_kind(&e) {
            Some(ErrorKind::BucketMissing) => anyhow::Error::new(NotFound(format!("{e:#}"))),
            _ => e,
        })?;
    if json {
        write_json(&entries)?;
        return Ok(());
    }
    for entry in &entries {
        let md5 = entry.md5.as_ref().map_or("-", |m| m.as_str());
        outln!("{:>12}  {:<32}  {}", entry.size, md5, entry.key);
    }
    Ok(())
}
