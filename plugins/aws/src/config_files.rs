//! aws's own INI files (`~/.aws/config`, `~/.aws/credentials`): the names
//! of the secret settings in them, for redaction, and a copy of the config
//! file with the `s3` transfer settings of one profile changed.
//!
//! aws reads `max_concurrent_requests` only from its config file, nested
//! under the profile's `s3 =` key; there is no environment variable or
//! option for it. The plugin therefore hands aws a private copy of the
//! user's config file with that one setting changed.

use stowage_plugin_support::tool_config::assignment;

/// Settings of aws's files whose values are secrets.
pub const SECRET_KEYS: [&str; 3] = [
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
];

/// Whether `line` is the section header of `profile` in an aws config
/// file: `[default]` for the default profile, `[profile NAME]` for others.
fn is_profile_header(line: &str, profile: &str) -> bool {
    let Some(name) = line
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    else {
        return false;
    };
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        ["profile", named] => *named == profile,
        [single] => *single == "default" && profile == "default",
        _ => false,
    }
}

/// The text of an aws config file with `max_concurrent_requests = n` set in
/// the nested `s3` settings of `profile`, everything else kept: the setting
/// goes into an existing `s3 =` block (replacing an older value), or a new
/// block right below the profile's header, or a new profile section.
pub fn with_max_concurrent_requests(config: &str, profile: &str, n: u32) -> String {
    let setting = format!("    max_concurrent_requests = {n}");
    let lines: Vec<&str> = config.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 3);
    let header = lines.iter().position(|l| is_profile_header(l, profile));
    let Some(header) = header else {
        out.extend(lines.iter().map(|l| l.to_string()));
        let section = if profile == "default" {
            "[default]".to_string()
        } else {
            format!("[profile {profile}]")
        };
        out.extend([section, "s3 =".to_string(), setting]);
        return out.join("\n") + "\n";
    };
    let section_end = lines[header + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| header + 1 + p);
    let s3_line = (header + 1..section_end).find(|&i| {
        !lines[i].starts_with([' ', '\t']) && assignment(lines[i]).is_some_and(|(k, _)| k == "s3")
    });
    let mut i = 0;
    while i < lines.len() {
        out.push(lines[i].to_string());
        match s3_line {
            None if i == header => out.extend(["s3 =".to_string(), setting.clone()]),
            Some(s3) if i == s3 => {
                // A value on the `s3` line itself would not be a nested block.
                *out.last_mut().expect("just pushed") = "s3 =".to_string();
                out.push(setting.clone());
                // The rest of the nested block, minus any older value.
                while i + 1 < section_end && lines[i + 1].starts_with([' ', '\t']) {
                    i += 1;
                    if !matches!(assignment(lines[i]), Some(("max_concurrent_requests", _))) {
                        out.push(lines[i].to_string());
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_joins_an_existing_nested_block() {
        let config = "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    max_concurrent_requests = 2\n[profile x]\ns3 =\n  addressing_style = virtual\n";
        assert_eq!(
            with_max_concurrent_requests(config, "default", 7),
            "[default]\nregion = us-east-1\ns3 =\n    max_concurrent_requests = 7\n    addressing_style = path\n[profile x]\ns3 =\n  addressing_style = virtual\n"
        );
    }

    #[test]
    fn the_setting_gets_a_block_or_a_section_of_its_own() {
        let backup = "[profile backup]\nregion = eu-west-1\n";
        let cases = [
            (backup, "backup", "[profile backup]\ns3 =\n    max_concurrent_requests = 3\nregion = eu-west-1\n"),
            (backup, "default", "[profile backup]\nregion = eu-west-1\n[default]\ns3 =\n    max_concurrent_requests = 3\n"),
            ("", "default", "[default]\ns3 =\n    max_concurrent_requests = 3\n"),
        ];
        for (config, profile, expected) in cases {
            assert_eq!(with_max_concurrent_requests(config, profile, 3), expected);
        }
    }

    #[test]
    fn profile_headers_are_recognised_as_botocore_does() {
        assert!(is_profile_header("[default]", "default"));
        assert!(is_profile_header(" [profile  backup] ", "backup"));
        assert!(!is_profile_header("[backup]", "backup"));
        assert!(!is_profile_header("[profile backup]", "default"));
    }
}
