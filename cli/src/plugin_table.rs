//! A plugin's table in `plugins.toml`, against the keys the plugin declares
//! ([`PluginInfo::options`](stowage_plugin_api::PluginInfo)).
//!
//! The host checks the table before the plugin sees it: an unknown key is
//! named with the closest declared one, a value of the wrong type with the
//! type it must have ([`check_table`]). The values of keys marked secret
//! never leave the host: listings show them as `***`
//! ([`configured_options`]) and every message a plugin returns has them cut
//! out ([`Secrets`]). No message here quotes a value at all.
//!
//! A plugin that declares no keys (one built against API 0.1, or a 1.x
//! plugin written before keys were declared) is not checked; its table goes
//! to it as written, and listings hide all of its values.

use serde::Serialize;
use stowage_plugin_api::{ConfigKey, ConfigKind};
use toml::{Table, Value};

/// What listings show instead of a secret value.
pub const REDACTED: &str = "***";

/// How alike an unknown key and a declared one must be (Jaro-Winkler, 0 to
/// 1) for the error to suggest the declared one.
const SUGGESTION_SIMILARITY: f64 = 0.8;

/// Checks plugin `plugin`'s `table` against the keys it declares: `Err`
/// holds one line naming every unknown key (with the closest declared one)
/// and every value of the wrong type. A plugin that declares no keys is
/// not checked.
pub fn check_table(plugin: &str, options: &[ConfigKey], table: &Table) -> Result<(), String> {
    if options.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = table
        .iter()
        .filter_map(
            |(key, value)| match options.iter().find(|o| o.name == *key) {
                None => Some(unknown_key(key, options)),
                Some(option) if !accepts(option.kind, value) => Some(format!(
                    "key `{key}` in plugins.toml must be {}, not {}",
                    kind_noun(option.kind),
                    value_noun(value)
                )),
                Some(_) => None,
            },
        )
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("plugin {plugin}: {}", problems.join("; ")))
    }
}

/// "unknown key `endpont` in plugins.toml; did you mean `endpoint`?", or
/// the declared keys when none is close.
fn unknown_key(key: &str, options: &[ConfigKey]) -> String {
    let closest = options
        .iter()
        .map(|o| (strsim::jaro_winkler(key, &o.name), o.name.as_str()))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((similarity, name)) if similarity >= SUGGESTION_SIMILARITY => {
            format!("unknown key `{key}` in plugins.toml; did you mean `{name}`?")
        }
        _ => format!(
            "unknown key `{key}` in plugins.toml; it takes {}",
            options
                .iter()
                .map(|o| format!("`{}`", o.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether `value` is a value of `kind`. A kind newer than this host is the
/// plugin's to check.
fn accepts(kind: ConfigKind, value: &Value) -> bool {
    match kind {
        ConfigKind::String | ConfigKind::Path => value.is_str(),
        ConfigKind::Integer => value.is_integer(),
        ConfigKind::Boolean => value.is_bool(),
        ConfigKind::StringList => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_str)),
        ConfigKind::Table => value
            .as_table()
            .is_some_and(|t| t.values().all(Value::is_str)),
        _ => true,
    }
}

/// "a string", "a list of strings", ...: what a key of `kind` must hold.
fn kind_noun(kind: ConfigKind) -> String {
    match kind {
        ConfigKind::Path => "a path (a string)".to_string(),
        ConfigKind::Integer => "an integer".to_string(),
        ConfigKind::Table => "a table of strings".to_string(),
        other => format!("a {other}"),
    }
}

/// What `value` is, without quoting it (it may be a secret).
fn value_noun(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(a) if a.iter().all(Value::is_str) => "a list of strings",
        Value::Array(_) => "a list holding other things than strings",
        Value::Table(t) if t.values().all(Value::is_str) => "a table of strings",
        Value::Table(_) => "a table holding other things than strings",
    }
}

/// The secret values of one plugin's table, to be cut out of every message
/// the plugin returns (a tool's error may echo its argv, a careless plugin
/// its config).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// Longest first, so that a value containing another is cut whole.
    values: Vec<String>,
}

/// Shorter texts are not cut out of messages: no credential is that short,
/// and cutting `-q` out of every message would garble them.
const MIN_SECRET_LEN: usize = 4;

impl Secrets {
    /// The values of `table`'s keys that `options` marks secret: each
    /// string, each string in a list or table, and for `--flag=value`
    /// arguments the value alone too.
    pub fn of(options: &[ConfigKey], table: &Table) -> Secrets {
        let mut values = Vec::new();
        for option in options.iter().filter(|o| o.secret) {
            if let Some(value) = table.get(&option.name) {
                collect_strings(value, &mut values);
            }
        }
        let mut parts: Vec<String> = values
            .iter()
            .filter_map(|v| v.split_once('=').map(|(_, value)| value.to_string()))
            .collect();
        values.append(&mut parts);
        values.retain(|v| v.chars().count() >= MIN_SECRET_LEN);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets { values }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for value in &self.values {
            text = text.replace(value.as_str(), REDACTED);
        }
        text
    }
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(values) => values.iter().for_each(|v| collect_strings(v, into)),
        Value::Table(table) => table.values().for_each(|v| collect_strings(v, into)),
        other => into.push(other.to_string()),
    }
}

/// One key of a plugin's table as `stowage plugins` shows it: the
/// declaration and the configured value, a secret one as `***`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfiguredOption {
    /// The key.
    pub name: String,
    /// What its value is; `None` for a key of a plugin that declares none.
    pub kind: Option<ConfigKind>,
    /// Its value when absent, as written in TOML.
    pub default: Option<String>,
    /// One sentence on it.
    pub help: Option<String>,
    /// Whether its value is hidden (always, for a plugin that declares no keys).
    pub secret: bool,
    /// The value in `plugins.toml`, if set; `"***"` for a secret.
    pub value: Option<Value>,
}

/// Every key `options` declares, with its value from `table`; for a plugin
/// that declares none, the keys of `table`, every value hidden.
pub fn configured_options(options: &[ConfigKey], table: &Table) -> Vec<ConfiguredOption> {
    let hidden = || Value::String(REDACTED.to_string());
    if options.is_empty() {
        return table
            .keys()
            .map(|name| ConfiguredOption {
                name: name.clone(),
                kind: None,
                default: None,
                help: None,
                secret: true,
                value: Some(hidden()),
            })
            .collect();
    }
    options
        .iter()
        .map(|option| ConfiguredOption {
            name: option.name.clone(),
            kind: Some(option.kind),
            default: option.default.clone(),
            help: Some(option.help.clone()),
            secret: option.secret,
            value: table.get(&option.name).map(|value| {
                if option.secret {
                    hidden()
                } else {
                    value.clone()
                }
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("endpoint", ConfigKind::String, "Where."),
            ConfigKey::new("config_file", ConfigKind::Path, "Which file."),
            ConfigKey::new("parallelism", ConfigKind::Integer, "How many.").default("4"),
            ConfigKey::new("use_https", ConfigKind::Boolean, "Whether."),
            ConfigKey::new("extra_args", ConfigKind::StringList, "More.")
                .default("[]")
                .secret(),
            ConfigKey::new("headers", ConfigKind::Table, "Headers."),
            ConfigKey::new("token", ConfigKind::String, "A credential.").secret(),
        ]
    }

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_table_of_declared_keys_and_kinds_passes() {
        let t = table(
            "endpoint = \"e\"\nconfig_file = \"~/f\"\nparallelism = 2\nuse_https = false\n\
             extra_args = [\"-v\"]\nheaders = { a = \"b\" }\ntoken = \"t\"\n",
        );
        assert_eq!(check_table("s3cmd", &options(), &t), Ok(()));
    }

    #[test]
    fn an_unknown_key_is_named_with_the_closest_declared_one() {
        let err = check_table("s3cmd", &options(), &table("endpont = \"x\"\n")).unwrap_err();
        assert_eq!(
            err,
            "plugin s3cmd: unknown key `endpont` in plugins.toml; did you mean `endpoint`?"
        );
    }

    #[test]
    fn an_unknown_key_like_none_lists_the_declared_ones() {
        let err = check_table("fs", &options()[2..3], &table("zzz = 1\n")).unwrap_err();
        assert_eq!(
            err,
            "plugin fs: unknown key `zzz` in plugins.toml; it takes `parallelism`"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_without_quoting_it() {
        let t = table(
            "parallelism = \"four\"\nuse_https = 1\nextra_args = [\"a\", 2]\n\
             headers = { a = 1 }\ntoken = 12345678\nconfig_file = [\"x\"]\n",
        );
        let err = check_table("s3cmd", &options(), &t).unwrap_err();
        for expected in [
            "key `parallelism` in plugins.toml must be an integer, not a string",
            "key `use_https` in plugins.toml must be a boolean, not an integer",
            "key `extra_args` in plugins.toml must be a list of strings, not a list holding \
             other things than strings",
            "key `headers` in plugins.toml must be a table of strings, not a table holding \
             other things than strings",
            "key `token` in plugins.toml must be a string, not an integer",
            "key `config_file` in plugins.toml must be a path (a string), not a list of strings",
        ] {
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
        assert!(err.starts_with("plugin s3cmd: "), "{err}");
        assert!(!err.contains("four") && !err.contains("12345678"), "{err}");
    }

    #[test]
    fn a_key_of_a_kind_newer_than_the_host_is_left_to_the_plugin() {
        let newer = [ConfigKey::new("window", ConfigKind::Other, "A newer kind.")];
        assert_eq!(
            check_table("next", &newer, &table("window = [1, \"a\"]\n")),
            Ok(())
        );
    }

    #[test]
    fn a_plugin_that_declares_no_keys_is_not_checked() {
        assert_eq!(check_table("old", &[], &table("anything = 1\n")), Ok(()));
    }

    #[test]
    fn secret_values_are_cut_out_of_messages() {
        let t = table(
            "token = \"hunter2-token\"\nendpoint = \"minio:9000\"\n\
             extra_args = [\"--secret_key=s3cr3t-key\", \"-q\"]\n",
        );
        let secrets = Secrets::of(&options(), &t);
        assert_eq!(
            secrets.redact(
                "auth failed for hunter2-token at minio:9000: s3cmd --secret_key=s3cr3t-key -q \
                 (key s3cr3t-key)"
            ),
            "auth failed for *** at minio:9000: s3cmd *** -q (key ***)"
        );
    }

    #[test]
    fn listings_show_secret_values_as_stars() {
        let t = table("token = \"hunter2-token\"\nparallelism = 8\n");
        let shown = configured_options(&options(), &t);
        let value = |name: &str| {
            shown
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.value.clone())
        };
        assert_eq!(value("token"), Some(Value::String("***".into())));
        assert_eq!(value("parallelism"), Some(Value::Integer(8)));
        assert_eq!(value("endpoint"), None);
        let undeclared = configured_options(&[], &t);
        assert_eq!(undeclared.len(), 2);
        assert!(undeclared
            .iter()
            .all(|o| o.secret && o.value == Some(Value::String("***".into()))));
    }
}
