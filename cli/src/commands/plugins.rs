//! `stowage plugins`.

use anyhow::Result;
use serde::Serialize;
use stowage_plugin_api::PluginInfo;

use crate::registry::{PluginSlot, Registry};

/// One row of the listing.
#[derive(Serialize)]
struct PluginRow {
    name: String,
    library: String,
    info: Option<PluginInfo>,
    tool_version: Option<String>,
    endpoint: Option<String>,
    ok: bool,
    problem: Option<String>,
}

fn row(slot: &PluginSlot) -> PluginRow {
    let mut row = PluginRow {
        name: slot.name.clone(),
        library: slot.library.display().to_string(),
        info: None,
        tool_version: None,
        endpoint: None,
        ok: false,
        problem: None,
    };
    match &slot.state {
        Err(problem) => row.problem = Some(problem.clone()),
        Ok(plugin) => {
            row.info = Some(plugin.info.clone());
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

/// Checks every plugin (concurrently: a check may run a tool) and prints them.
pub fn run(registry: &Registry, json: bool) -> Result<()> {
    let slots: Vec<&PluginSlot> = registry.slots().collect();
    let rows: Vec<PluginRow> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots.iter().map(|s| scope.spawn(|| row(s))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a plugin check does not panic the host"))
            .collect()
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for row in &rows {
        let Some(info) = &row.info else {
            println!(
                "{:<10} -        {}",
                row.name,
                row.problem.as_deref().unwrap_or("")
            );
            continue;
        };
        let tool = match (info.tool.as_ref(), &row.tool_version) {
            (None, _) => "(built in)".to_string(),
            (Some(t), Some(v)) => format!("{t} {v}"),
            (Some(t), None) => format!("{t} ?"),
        };
        let schemes: Vec<String> = info.schemes.iter().map(|s| format!("{s}://")).collect();
        let status = match &row.problem {
            None => "ok".to_string(),
            Some(p) => p.clone(),
        };
        println!(
            "{:<10} {:<8} {:<24} {:<12} {}",
            row.name,
            info.version,
            tool,
            schemes.join(","),
            status
        );
    }
    Ok(())
}
