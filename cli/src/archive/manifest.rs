//! Manifests: the key, size and MD5 of every object of a component, stored
//! in the archive beside its tarball (`manifests/<component>.json`) so a
//! restore can check the tarball against what the backup saw.

use serde::{Deserialize, Serialize};

use crate::sync::md5_digest::Md5Digest;
use crate::sync::plan::Inventory;

/// One component's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The component's name.
    pub component: String,
    /// Every object, sorted by key.
    pub objects: Vec<ManifestObject>,
}

/// One object of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestObject {
    /// Key relative to the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5 of the content (lowercase hex in the JSON).
    pub md5: Md5Digest,
}

impl Manifest {
    /// The manifest of `inventory`, whose MD5s must all be known.
    pub fn new(component: &str, inventory: &Inventory) -> Manifest {
        Manifest {
            component: component.to_string(),
            objects: inventory
                .iter()
                .map(|(key, f)| ManifestObject {
                    key: key.to_string(),
                    size: f.size,
                    md5: f.md5.expect("a packed inventory has every MD5"),
                })
                .collect(),
        }
    }
}
