//! gsutil's own boto config file (`~/.boto`, or the file `BOTO_CONFIG`
//! names): the names of the secret settings in it, for redaction, and the
//! JSON API endpoint it names, for display.

use stowage_plugin_support::tool_config::assignment;

/// Settings of a boto config whose values are secrets.
pub const SECRET_KEYS: [&str; 4] = [
    "gs_secret_access_key",
    "gs_oauth2_refresh_token",
    "aws_secret_access_key",
    "gs_service_key_file_password",
];

/// `gs_json_host[:gs_json_port]` of a boto config, or Google's default host.
pub fn json_api_endpoint(boto_text: &str) -> String {
    let value = |wanted: &str| {
        boto_text
            .lines()
            .filter_map(assignment)
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.to_string())
    };
    let host = value("gs_json_host").unwrap_or_else(|| "storage.googleapis.com".to_string());
    match value("gs_json_port") {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::tool_config::secret_values;

    use super::*;

    #[test]
    fn boto_secrets_and_endpoint_are_read() {
        let text = "[Credentials]\ngs_oauth2_refresh_token = 1//token\ngs_json_host = 127.0.0.1\ngs_json_port = 4443\n# gs_secret_access_key = old\n[Boto]\nnum_retries = 3\n";
        assert_eq!(secret_values(text, &SECRET_KEYS), ["1//token"]);
        assert_eq!(json_api_endpoint(text), "https://127.0.0.1:4443");
        assert_eq!(json_api_endpoint(""), "https://storage.googleapis.com");
    }
}
