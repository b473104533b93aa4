//! A tool's own configuration: the `name = value` lines of its INI files
//! (`~/.aws/credentials`, `~/.s3cfg`, `~/.boto`), and the secret values in
//! them and in its environment, found so that [`Tool`](crate::tool::Tool)
//! can redact them from every message.
//!
//! Secrets are collected from every section of a file, not only the one
//! the tool will use: a value redacted needlessly costs nothing, one
//! missed may end up in a report.

/// Environment variables in which the AWS tools (aws, s3cmd) take secrets.
pub const AWS_SECRET_VARIABLES: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// One `name = value` (or `name: value`) line of an INI file, trimmed;
/// `None` for section headers, comments and lines without a delimiter.
pub fn assignment(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim();
    if trimmed.starts_with(['[', '#', ';']) {
        return None;
    }
    let at = trimmed.find(['=', ':'])?;
    Some((trimmed[..at].trim(), trimmed[at + 1..].trim()))
}

/// The non-empty values of the settings called `names` in the text of an
/// INI file, in every section, in file order.
pub fn secret_values(text: &str, names: &[&str]) -> Vec<String> {
    text.lines()
        .filter_map(assignment)
        .filter(|(name, value)| names.contains(name) && !value.is_empty())
        .map(|(_, value)| value.to_string())
        .collect()
}

/// The non-empty values of the environment variables called `names`.
pub fn secret_variables(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .filter(|value| !value.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_skip_headers_and_comments() {
        assert_eq!(assignment("  key = a=b "), Some(("key", "a=b")));
        assert_eq!(assignment("key: v"), Some(("key", "v")));
        assert_eq!(assignment("s3 ="), Some(("s3", "")));
        for line in ["[default]", "# key = v", "; key = v", "no delimiter", ""] {
            assert_eq!(assignment(line), None, "{line:?}");
        }
    }

    #[test]
    fn secrets_are_found_in_every_section_and_only_by_name() {
        let text = "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s3cr3t\n\n[other]\naws_secret_access_key=two\naws_session_token: tok==\nempty_token =\n# aws_secret_access_key = commented\n";
        let names = ["aws_secret_access_key", "aws_session_token", "empty_token"];
        assert_eq!(secret_values(text, &names), ["s3cr3t", "two", "tok=="]);
        assert!(secret_values(text, &[]).is_empty());
    }

    #[test]
    fn secret_variables_are_read_when_set() {
        std::env::set_var("STOWAGE_TEST_TOOL_CONFIG_SECRET", "hunter2");
        std::env::set_var("STOWAGE_TEST_TOOL_CONFIG_EMPTY", "");
        let found = secret_variables(&[
            "STOWAGE_TEST_TOOL_CONFIG_SECRET",
            "STOWAGE_TEST_TOOL_CONFIG_EMPTY",
            "STOWAGE_TEST_TOOL_CONFIG_UNSET",
        ]);
        assert_eq!(found, ["hunter2"]);
    }
}
