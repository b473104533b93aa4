//! `stowage plugins`: every plugin, whether it is ready, and with
//! `--verbose` the keys of its table. It exits 3 when any plugin cannot load
//! or is not ready, so a cron job or a readiness probe can run it.

use anyhow::Result;
use serde::Serialize;

use crate::exit::ConfigError;
use crate::output::write_json;
use crate::plugin_table::{configured_options, ConfiguredOption, REDACTED};
use crate::registry::{PluginSlot, Registry};

/// One plugin as the listing shows it (and `--json` prints it).
#[derive(Serialize)]
struct PluginRow {
    /// Its name in `plugins.toml`.
    name: String,
    /// The library it was loaded from.
    library: String,
    /// The plugin API version it was built against, once its library loaded.
    api_version: Option<String>,
    /// The plugin's own version, once it was built.
    version: Option<String>,
    description: Option<String>,
    /// The external program it drives; `None` for one that needs none.
    tool: Option<String>,
    tool_version: Option<String>,
    schemes: Vec<String>,
    endpoint: Option<String>,
    /// The keys of its table, with the configured values (secrets as `***`).
    options: Vec<ConfiguredOption>,
    /// Loaded, built, and its check passed.
    ok: bool,
    problem: Option<String>,
}

fn row(slot: &PluginSlot) -> PluginRow {
    let mut row = PluginRow {
        name: slot.name.clone(),
        library: slot.library.display().to_string(),
        api_version: slot.api_version.clone(),
        version: None,
        description: None,
        tool: None,
        tool_version: None,
        schemes: Vec::new(),
        endpoint: None,
        options: configured_options(&slot.options, &slot.config),
        ok: false,
        problem: None,
    };
    match &slot.state {
        Err(problem) => row.problem = Some(problem.clone()),
        Ok(plugin) => {
            row.version = Some(plugin.info.version.clone());
            row.description = Some(plugin.info.description.clone());
            row.tool = plugin.info.tool.clone();
            row.schemes = plugin.info.schemes.clone();
            match plugin.check() {
                Ok(status) => {
                    row.ok = true;
                    row.tool_version = status.tool_version;
                    row.endpoint = Some(status.endpoint);
                }
                Err(e) => row.problem = Some(format!("{e:#}")),
            }
        }
    }
    row
}

/// Checks every plugin (concurrently: a check may run a tool), prints them,
/// and fails with a configuration error (exit 3) naming those that are not
/// ready.
pub fn run(registry: &Registry, json: bool, verbose: bool) -> Result<()> {
    let slots: Vec<&PluginSlot> = registry.slots().collect();
    let rows: Vec<PluginRow> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots.iter().map(|s| scope.spawn(|| row(s))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a plugin check does not panic the host"))
            .collect()
    });
    if json {
        write_json(&rows)?;
    } else {
        print_table(&rows, verbose);
    }
    let not_ready: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.name.as_str())
        .collect();
    if not_ready.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{} of {} plugins not ready: {}",
            not_ready.len(),
            rows.len(),
            not_ready.join(", ")
        ))
        .into())
    }
}

fn print_table(rows: &[PluginRow], verbose: bool) {
    outln!(
        "{:<10} {:<8} {:<6} {:<24} {:<12} STATUS",
        "PLUGIN",
        "VERSION",
        "API",
        "TOOL",
        "SCHEMES"
    );
    for row in rows {
        let tool = match (&row.version, &row.tool, &row.tool_version) {
            (None, _, _) => "-".to_string(),
            (Some(_), None, _) => "no external tool".to_string(),
            (Some(_), Some(t), Some(v)) => format!("{t} {v}"),
            (Some(_), Some(t), None) => format!("{t} ?"),
        };
        let schemes: Vec<String> = row.schemes.iter().map(|s| format!("{s}://")).collect();
        outln!(
            "{:<10} {:<8} {:<6} {:<24} {:<12} {}",
            row.name,
            row.version.as_deref().unwrap_or("-"),
            row.api_version.as_deref().unwrap_or("-"),
            tool,
            if schemes.is_empty() {
                "-".to_string()
            } else {
                schemes.join(",")
            },
            row.problem.as_deref().unwrap_or("ok")
        );
        if verbose {
            print_options(&row.options);
        }
    }
}

/// `    name = value   (kind, default D, secret)` and the help below it.
fn print_options(options: &[ConfiguredOption]) {
    for option in options {
        let value = match &option.value {
            Some(_) if option.secret => format!("{} = {REDACTED}", option.name),
            Some(value) => format!("{} = {value}", option.name),
            None => format!("{} not set", option.name),
        };
        let Some(kind) = option.kind else {
            outln!("    {value}   (the plugin declares no keys: value hidden)");
            continue;
        };
        let mut about = vec![kind.to_string()];
        if let Some(default) = &option.default {
            about.push(format!("default {default}"));
        }
        if option.secret {
            about.push("secret".to_string());
        }
        outln!("    {value}   ({})", about.join(", "));
        if let Some(help) = &option.help {
            outln!("        {help}");
        }
    }
}
