//! Reading a plugin's config table, and the test that keeps a plugin's
//! declared options ([`PluginInfo::options`](stowage_plugin_api::PluginInfo))
//! equal to the keys its config struct takes.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;
use stowage_plugin_api::{ConfigKey, ConfigKind, ErrorKind, PluginError};

use crate::tool::DEFAULT_STALL_TIMEOUT;

/// Parses the TOML text of plugin `plugin`'s config table into `T`; an
/// unknown key or a wrong type is a one-line `Config` error.
pub fn parse_config<T: DeserializeOwned>(plugin: &str, text: &str) -> Result<T, PluginError> {
    toml::from_str(text).map_err(|e| {
        PluginError::new(
            ErrorKind::Config,
            format!(
                "plugin {plugin}: bad config in plugins.toml: {}",
                e.message()
            ),
        )
    })
}

/// `program`, the key of every plugin built on [`crate::tool::Tool`]: the
/// name or path of `tool`.
pub fn program_option(tool: &str) -> ConfigKey {
    ConfigKey::new(
        "program",
        ConfigKind::String,
        &format!("{tool}'s name on PATH, or a path to it."),
    )
    .default(&format!("{tool:?}"))
}

/// `stall_timeout`, the key every plugin built on [`crate::tool::Tool`]
/// passes to [`crate::tool::Tool::set_stall_timeout`].
pub fn stall_timeout_option(tool: &str) -> ConfigKey {
    ConfigKey::new(
        "stall_timeout",
        ConfigKind::Integer,
        &format!(
            "Seconds without output before a run of {tool} is killed \
             (STOWAGE_STALL_TIMEOUT overrides it)."
        ),
    )
    .default(&DEFAULT_STALL_TIMEOUT.as_secs().to_string())
}

/// `conditional_create`, the key of the plugins whose store may or may not
/// honour a conditional write (`If-None-Match: *`).
pub fn conditional_create_option() -> ConfigKey {
    ConfigKey::new(
        "conditional_create",
        ConfigKind::Boolean,
        "false for a server that ignores If-None-Match: restores then lock without \
         conditional creates.",
    )
    .default("true")
}

/// Panics, naming the difference, unless `options` declares exactly the
/// keys of the config struct `T`: the same names, each taking a value of
/// its declared kind and its declared default; `T` must refuse a key it
/// does not declare (`#[serde(deny_unknown_fields)]`), and every key needs
/// a one-line help. Each plugin calls it from one unit test, so its
/// declaration cannot drift from its config:
///
/// ```ignore
/// #[test]
/// fn declared_options_are_the_config_keys() {
///     assert_declared_options::<MyConfig>(&MyProvider::options());
/// }
/// ```
pub fn assert_declared_options<T: DeserializeOwned>(options: &[ConfigKey]) {
    let mut declared: Vec<&str> = options.iter().map(|o| o.name.as_str()).collect();
    declared.sort_unstable();
    let mut fields = struct_fields::<T>();
    fields.sort_unstable();
    assert_eq!(
        declared, fields,
        "the declared options (left) are not the config struct's fields (right)"
    );
    for option in options {
        assert!(
            !option.help.trim().is_empty() && !option.help.contains('\n'),
            "option `{}` needs a one-line help",
            option.name
        );
    }
    let table = |overrides: &[(&str, &str)]| -> String {
        let mut text: String = options
            .iter()
            .filter(|o| !overrides.iter().any(|(name, _)| *name == o.name))
            .map(|o| format!("{} = {}\n", o.name, sample_value(o.kind)))
            .collect();
        for (name, value) in overrides {
            text.push_str(&format!("{name} = {value}\n"));
        }
        text
    };
    let every_key = table(&[]);
    if let Err(e) = toml::from_str::<T>(&every_key) {
        panic!(
            "a table with every declared key, each of its kind, is refused: {}\n{every_key}",
            e.message()
        );
    }
    for option in options {
        if let Some(default) = &option.default {
            let text = table(&[(&option.name, default)]);
            if let Err(e) = toml::from_str::<T>(&text) {
                panic!(
                    "the default of `{}` ({default}) is refused: {}",
                    option.name,
                    e.message()
                );
            }
        }
    }
    let undeclared = table(&[("stowage_undeclared_key", "1")]);
    assert!(
        toml::from_str::<T>(&undeclared).is_err(),
        "the config struct takes a key it does not declare (add #[serde(deny_unknown_fields)])"
    );
}

/// A TOML value of `kind`, written as in `plugins.toml`.
fn sample_value(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::Path => "\"/nonexistent/stowage-sample\"",
        ConfigKind::Integer => "1",
        ConfigKind::Boolean => "true",
        ConfigKind::StringList => "[\"sample\"]",
        ConfigKind::Table => "{ sample = \"sample\" }",
        _ => "\"sample\"",
    }
}

/// The field names of the struct `T` as serde reads them (after renames),
/// asked of its `Deserialize` impl without any input.
fn struct_fields<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut fields: &'static [&'static str] = &[];
    // The deserializer records the names and then fails, on purpose.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.to_vec()
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's field names are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names read"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: Option<u32>,
        #[serde(default)]
        args: Vec<String>,
    }

    fn options() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("name", ConfigKind::String, "A name."),
            ConfigKey::new("count", ConfigKind::Integer, "A count.").default("4"),
            ConfigKey::new("args", ConfigKind::StringList, "Arguments.").default("[]"),
        ]
    }

    #[test]
    fn a_declaration_equal_to_the_struct_passes() {
        assert_eq!(struct_fields::<Sample>(), ["name", "count", "args"]);
        assert_declared_options::<Sample>(&options());
    }

    #[test]
    #[should_panic(expected = "are not the config struct's fields")]
    fn a_missing_declaration_is_named() {
        assert_declared_options::<Sample>(&options()[..2]);
    }

    #[test]
    #[should_panic(expected = "every declared key, each of its kind, is refused")]
    fn a_wrong_kind_is_named() {
        let mut options = options();
        options[1].kind = ConfigKind::Boolean;
        assert_declared_options::<Sample>(&options);
    }

    #[test]
    #[should_panic(expected = "the default of `count` (\"4\") is refused")]
    fn a_default_of_the_wrong_type_is_named() {
        let mut options = options();
        options[1].default = Some("\"4\"".to_string());
        assert_declared_options::<Sample>(&options);
    }

    #[test]
    #[should_panic(expected = "takes a key it does not declare")]
    fn a_struct_taking_any_key_is_refused() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Lenient {
            name: String,
        }
        assert_declared_options::<Lenient>(&options()[..1]);
    }
}
