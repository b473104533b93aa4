//! Creating a bucket with a tool unless it exists, tolerating one that
//! someone else created in the meantime.

use stowage_plugin_api::{ErrorKind, PluginError};

use crate::tool::Tool;

/// How one tool looks for a bucket and creates it.
#[derive(Clone, Copy, Debug)]
pub struct BucketCommands<'a> {
    /// Arguments of a command that succeeds when the bucket exists
    /// (`ls -b gs://bucket`).
    pub probe: &'a [&'a str],
    /// Arguments of the command that creates it (`mb gs://bucket`).
    pub create: &'a [&'a str],
    /// Texts that, in a failed probe's message, mean the bucket is missing,
    /// besides what [`classify`](crate::tool::classify) already reads as
    /// `BucketMissing` (a HEAD request's bare `(404)`).
    pub missing: &'a [&'a str],
    /// Texts that, in a failed create's message, mean the bucket exists
    /// after all: created by someone else since the probe, or already ours
    /// (`BucketAlreadyOwnedByYou`).
    pub already_exists: &'a [&'a str],
}

/// Creates a bucket with `tool` unless it exists: `Ok(true)` when this call
/// created it, `Ok(false)` when it was there (or appeared meanwhile). A
/// probe that fails for another reason (no access, no network) is that
/// error, and nothing is created.
pub fn ensure_bucket(tool: &Tool, commands: &BucketCommands) -> Result<bool, PluginError> {
    match tool.run(commands.probe) {
        Ok(_) => Ok(false),
        Err(e) if is_missing(&e, commands.missing) => match tool.run(commands.create) {
            Ok(_) => Ok(true),
            Err(e) if mentions_any(&e, commands.already_exists) => Ok(false),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Whether a failed probe says the bucket is not there.
fn is_missing(error: &PluginError, texts: &[&str]) -> bool {
    error.kind == ErrorKind::BucketMissing || mentions_any(error, texts)
}

fn mentions_any(error: &PluginError, texts: &[&str]) -> bool {
    texts.iter().any(|text| error.message.contains(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c SCRIPT` as a bucket tool.
    fn sh() -> Tool {
        Tool::new("x", "sh", "")
    }

    fn commands<'a>(probe: &'a [&'a str], create: &'a [&'a str]) -> BucketCommands<'a> {
        BucketCommands {
            probe,
            create,
            missing: &["(404)"],
            already_exists: &["BucketAlreadyOwnedByYou"],
        }
    }

    const FAIL: &[&str] = &["-c", "echo 'must not run' >&2; exit 9"];
    const OK: &[&str] = &["-c", "exit 0"];

    #[test]
    fn an_existing_bucket_is_left_alone() {
        assert!(!ensure_bucket(&sh(), &commands(OK, FAIL)).unwrap());
    }

    #[test]
    fn a_missing_bucket_is_created() {
        let no_such_bucket = &["-c", "echo 'S3 error: 404 (NoSuchBucket)' >&2; exit 12"];
        assert!(ensure_bucket(&sh(), &commands(no_such_bucket, OK)).unwrap());
        let bare_404 = &[
            "-c",
            "echo 'An error occurred (404) when calling HeadBucket' >&2; exit 255",
        ];
        assert!(ensure_bucket(&sh(), &commands(bare_404, OK)).unwrap());
    }

    #[test]
    fn a_bucket_created_meanwhile_is_no_failure() {
        let missing = &["-c", "echo NoSuchBucket >&2; exit 1"];
        let taken = &[
            "-c",
            "echo 'S3 error: 409 (BucketAlreadyOwnedByYou)' >&2; exit 1",
        ];
        assert!(!ensure_bucket(&sh(), &commands(missing, taken)).unwrap());
        let refused = &["-c", "echo 'S3 error: 403 (AccessDenied)' >&2; exit 1"];
        let err = ensure_bucket(&sh(), &commands(missing, refused)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn a_probe_failing_otherwise_creates_nothing() {
        let denied = &["-c", "echo 'S3 error: 403 (AccessDenied)' >&2; exit 1"];
        let err = ensure_bucket(&sh(), &commands(denied, FAIL)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(!err.message.contains("must not run"), "{}", err.message);
    }
}
