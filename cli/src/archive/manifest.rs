//! Manifests: the key, size and MD5 of every object of a component, stored
//! in the archive beside its tarball (`manifests/<component>.json`) so a
//! restore can check the tarball against what the backup saw.

use std::fmt;

use md5::{Digest, Md5};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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

/// A digest of a set of objects, whatever order they come in: the sum of
/// every object's MD5 (of its key — its length first, so that no two
/// objects feed the same bytes — size and MD5) and their count. A check
/// that two parts of one archive agree (a manifest and its tarball, read
/// as they come, neither held), not a defence against their maker.
#[derive(Debug, Default)]
pub struct ObjectsDigest {
    sum: u128,
    count: u64,
}

impl ObjectsDigest {
    /// Adds one object.
    pub fn add(&mut self, key: &str, size: u64, md5: Option<Md5Digest>) {
        let mut hasher = Md5::new();
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update(size.to_le_bytes());
        match md5 {
            Some(md5) => {
                hasher.update([1]);
                hasher.update(md5.as_bytes());
            }
            None => hasher.update([0]),
        }
        let object = u128::from_le_bytes(hasher.finalize().into());
        self.sum = self.sum.wrapping_add(object);
        self.count += 1;
    }

    /// The digest of the objects added.
    pub fn finish(self) -> Md5Digest {
        let mut hasher = Md5::new();
        hasher.update(self.sum.to_le_bytes());
        hasher.update(self.count.to_le_bytes());
        hasher.into()
    }
}

/// A manifest read as a stream: its component and the [`ObjectsDigest`]
/// of its objects, none of them held (parsed whole, a manifest of
/// 1,000,000 objects with GitLab-like keys is ~170 MiB). Refuses what
/// [`Manifest`] refuses.
#[derive(Debug)]
pub struct DigestedManifest {
    /// The component's name.
    pub component: String,
    /// The digest of its objects.
    pub digest: Md5Digest,
}

const MANIFEST_FIELDS: &[&str] = &["component", "objects"];

impl<'de> Deserialize<'de> for DigestedManifest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("Manifest", MANIFEST_FIELDS, ManifestVisitor)
    }
}

struct ManifestVisitor;

impl<'de> Visitor<'de> for ManifestVisitor {
    type Value = DigestedManifest;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("struct Manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut component, mut digest) = (None, None);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "component" if component.is_none() => component = Some(map.next_value()?),
                "objects" if digest.is_none() => digest = Some(map.next_value_seed(Digesting)?),
                "component" | "objects" => {
                    return Err(de::Error::custom(format!("duplicate field `{field}`")))
                }
                other => return Err(de::Error::unknown_field(other, MANIFEST_FIELDS)),
            }
        }
        Ok(DigestedManifest {
            component: component.ok_or_else(|| de::Error::missing_field("component"))?,
            digest: digest.ok_or_else(|| de::Error::missing_field("objects"))?,
        })
    }
}

/// A manifest's objects, digested one at a time.
struct Digesting;

impl<'de> DeserializeSeed<'de> for Digesting {
    type Value = Md5Digest;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Digesting {
    type Value = Md5Digest;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a sequence of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut objects: A) -> Result<Self::Value, A::Error> {
        let mut digest = ObjectsDigest::default();
        while let Some(object) = objects.next_element::<ManifestObject>()? {
            digest.add(&object.key, object.size, Some(object.md5));
        }
        Ok(digest.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, byte: u8) -> ManifestObject {
        ManifestObject {
            key: key.to_string(),
            size: u64::from(byte),
            md5: Md5Digest::from([byte; 16]),
        }
    }

    fn digest_of(objects: &[ManifestObject]) -> Md5Digest {
        let mut digest = ObjectsDigest::default();
        for o in objects {
            digest.add(&o.key, o.size, Some(o.md5));
        }
        digest.finish()
    }

    #[test]
    fn a_manifest_streamed_has_the_digest_of_its_objects_in_any_order() {
        let objects = vec![object("b", 2), object("a", 1), object("c/d", 3)];
        let manifest = Manifest {
            component: "uploads".to_string(),
            objects: objects.clone(),
        };
        let streamed: DigestedManifest =
            serde_json::from_str(&serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(streamed.component, "uploads");
        let sorted = [object("a", 1), object("b", 2), object("c/d", 3)];
        assert_eq!(streamed.digest, digest_of(&sorted));
        assert_ne!(streamed.digest, digest_of(&sorted[..2]));
        let twice = [
            object("a", 1),
            object("a", 1),
            object("b", 2),
            object("c/d", 3),
        ];
        assert_ne!(streamed.digest, digest_of(&twice));
        assert_ne!(digest_of(&[object("a", 1)]), digest_of(&[object("a", 2)]));
    }

    #[test]
    fn a_streamed_manifest_refuses_what_a_parsed_one_does() {
        for text in [
            r#"{"component": "uploads"}"#,
            r#"{"objects": []}"#,
            r#"{"component": "uploads", "objects": [], "extra": 1}"#,
            r#"{"component": "uploads", "objects": [], "objects": []}"#,
            r#"{"component": "uploads", "objects": [{"key": "a", "size": 1}]}"#,
            r#"{"component": "uploads", "objects": [{"key": "a", "size": 1, "md5": "00", "x": 1}]}"#,
        ] {
            assert!(serde_json::from_str::<Manifest>(text).is_err(), "{text}");
            let error = serde_json::from_str::<DigestedManifest>(text).unwrap_err();
            assert!(!error.to_string().is_empty(), "{text}");
        }
    }
}
