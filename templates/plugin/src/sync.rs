//! A sync between two trees: decide every action first, then copy what
//! differs and, last, delete what the source lacks.

use std::collections::HashMap;

use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::{
    ActionKind, CompareMode, ErrorKind, PluginError, Progress, ProgressSink, SyncOptions,
    SyncReport,
};

use crate::files::{md5_hex, Object, Tree};

/// Makes `to` hold what `from` holds, as `options` say, reporting each
/// transfer as `kind` (upload, download or copy) and calling `progress`
/// after each one.
pub fn sync(
    from: &Tree,
    to: &Tree,
    kind: ActionKind,
    options: &SyncOptions,
    progress: &dyn ProgressSink,
) -> Result<SyncReport, PluginError> {
    // Excluded keys are invisible on both sides: neither copied nor deleted.
    let excludes = ExcludeMatcher::new(&options.excludes)
        .map_err(|e| PluginError::new(ErrorKind::InvalidInput, e))?;
    let included = |tree: &Tree| -> Result<Vec<Object>, PluginError> {
        let mut objects = tree.objects()?;
        objects.retain(|object| !excludes.is_excluded(&object.key));
        Ok(objects)
    };
    let sources = included(from)?;
    let mut destinations: HashMap<String, Object> = included(to)?
        .into_iter()
        .map(|object| (object.key.clone(), object))
        .collect();

    // Decide every action before taking any, so that a dry run reports
    // exactly what the real run does and a refused sync changes nothing.
    let mut report = SyncReport::default();
    let mut transfers = Vec::new();
    for object in &sources {
        match destinations.remove(&object.key) {
            Some(there) if unchanged(object, &there, options.compare)? => {
                report.push(ActionKind::Skip, object.key.as_str(), object.size)
            }
            _ => transfers.push(object),
        }
    }
    let mut deletes: Vec<String> = if options.delete {
        destinations.into_keys().collect()
    } else {
        Vec::new()
    };
    deletes.sort();
    if let Some(max) = options.max_deletes {
        if deletes.len() as u64 > max {
            return Err(PluginError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "sync would delete {} objects, more than the limit of {max}; nothing was changed",
                    deletes.len()
                ),
            ));
        }
    }
    if options.dry_run {
        for object in transfers {
            report.push(kind, object.key.as_str(), object.size);
        }
        for key in deletes {
            report.push(ActionKind::Delete, key, 0);
        }
        return Ok(report);
    }

    // One object at a time: a sync's `parallelism` is a hint this plugin
    // does not need. Deletes only once every transfer has succeeded.
    let mut done = Progress::default();
    for object in transfers {
        to.write_copy(&object.key, &object.path)?;
        report.push(kind, object.key.as_str(), object.size);
        done.objects_done += 1;
        done.bytes_done += object.size;
        done.current_key = object.key.clone();
        progress.report(&done);
    }
    for key in deletes {
        to.remove(&key)?;
        report.push(ActionKind::Delete, key, 0);
    }
    Ok(report)
}

/// Whether `there` (in the destination) is already a copy of `object`
/// under `mode`.
fn unchanged(object: &Object, there: &Object, mode: CompareMode) -> Result<bool, PluginError> {
    if object.size != there.size {
        return Ok(false);
    }
    match mode {
        CompareMode::Checksum => Ok(md5_hex(&object.path)? == md5_hex(&there.path)?),
        CompareMode::SizeMtime => Ok(there.modified >= object.modified),
        CompareMode::Size => Ok(true),
        // The host compared already and planned this transfer: make it.
        // (A plugin may skip listing the destination for it, too.)
        CompareMode::Planned => Ok(false),
        // A mode added to the API after this plugin was built.
        newer => Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!("plugin memdir does not know the compare mode {newer:?}"),
        )),
    }
}
