//! What gsutil prints on stderr about each object: the messages of
//! `rsync` and `rm`, read back into actions and keys.

use stowage_plugin_api::ActionKind;

use crate::locations::is_local_root;

/// The action and key one message of `gsutil rsync` reports, given the
/// roots passed to it. The messages (on stderr):
///
/// - `Would copy SRC/key to DST/key` and `Would remove DST/key` (dry run);
/// - `Copying SRC/key [Content-Type=text/plain]...` (the content type only
///   for a bucket destination) and `Removing DST/key` (real run).
///
/// Local roots print as `file://` URLs. Other messages (`Copying mtime from
/// src to dst for ...`, a metadata update) are no transfer and give `None`.
pub fn parse_rsync_message(
    message: &str,
    source_root: &str,
    destination_root: &str,
) -> Option<(ActionKind, String)> {
    let source = printed_root(source_root);
    let destination = printed_root(destination_root);
    let transfer = match (is_local_root(source_root), is_local_root(destination_root)) {
        (true, _) => ActionKind::Upload,
        (_, true) => ActionKind::Download,
        _ => ActionKind::Copy,
    };
    let (kind, key) = if let Some(rest) = message
        .strip_prefix("Would copy ")
        .and_then(|r| r.strip_prefix(source.as_str()))
    {
        (transfer, dry_run_copy_key(rest, &destination)?)
    } else if let Some(key) = message
        .strip_prefix("Would remove ")
        .or_else(|| message.strip_prefix("Removing "))
        .and_then(|r| r.strip_prefix(destination.as_str()))
    {
        (ActionKind::Delete, key)
    } else if let Some(rest) = message
        .strip_prefix("Copying ")
        .and_then(|r| r.strip_prefix(source.as_str()))
    {
        let rest = rest.strip_suffix("...")?;
        let key = if is_local_root(destination_root) {
            rest
        } else {
            without_content_type(rest)
        };
        (transfer, key)
    } else {
        return None;
    };
    (!key.is_empty()).then(|| (kind, key.to_string()))
}

/// The key of the rest of a dry-run line, `key to DST/key`: the key occurs
/// twice, so its length follows from the line's, whatever it contains.
fn dry_run_copy_key<'m>(rest: &'m str, destination: &str) -> Option<&'m str> {
    let fixed = " to ".len() + destination.len();
    let doubled = rest.len().checked_sub(fixed)?;
    if doubled % 2 != 0 {
        return None;
    }
    let key = rest.get(..doubled / 2)?;
    (rest.get(doubled / 2..)? == format!(" to {destination}{key}")).then_some(key)
}

/// `key [Content-Type=...]` without the content type.
fn without_content_type(text: &str) -> &str {
    match text.rfind(" [Content-Type=") {
        Some(at) if text.ends_with(']') => &text[..at],
        _ => text,
    }
}

/// The key of one `Removing gs://bucket/prefix/key...` line of `gsutil rm`.
pub fn parse_removed_key<'m>(message: &'m str, root: &str) -> Option<&'m str> {
    message
        .strip_prefix("Removing ")?
        .strip_prefix(root)?
        .strip_suffix("...")
        .filter(|k| !k.is_empty())
}

/// The messages of one line of gsutil's stderr: its progress display ends
/// with `\r` rather than a newline, so a message may follow it on the line.
pub fn messages(line: &str) -> impl Iterator<Item = &str> {
    line.split('\r')
}

/// A root as gsutil prints it in its messages.
fn printed_root(root: &str) -> String {
    if root.contains("://") {
        root.to_string()
    } else {
        format!("file://{root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsync_messages_become_actions_whatever_the_key_holds() {
        let up = ("/tmp/src/", "gs://bkt/p/");
        let down = ("gs://bkt/p/", "/tmp/d/");
        let across = ("gs://a/", "gs://b/snapshot.1/");
        let upload = |key: &str| Some((ActionKind::Upload, key.to_string()));
        let delete = |key: &str| Some((ActionKind::Delete, key.to_string()));
        let cases = [
            // Dry run: the key occurs twice, so " to URL" inside it is no trouble.
            (
                up,
                "Would copy file:///tmp/src/a to gs://bkt/p/b to gs://bkt/p/a to gs://bkt/p/b",
                upload("a to gs://bkt/p/b"),
            ),
            (up, "Would copy file:///tmp/src/a to gs://bkt/p/b", None),
            (up, "Would remove gs://bkt/p/old x", delete("old x")),
            (up, "Would set mtime for gs://bkt/p/a", None),
            // Real run.
            (
                up,
                "Copying file:///tmp/src/d d/it's [1]... [Content-Type=text/plain]...",
                upload("d d/it's [1]..."),
            ),
            (up, "Removing gs://bkt/p/dots...", delete("dots...")),
            (up, "Copying mtime from src to dst for gs://bkt/p/a", None),
            (
                down,
                "Copying gs://bkt/p/x [y]...",
                Some((ActionKind::Download, "x [y]".to_string())),
            ),
            (down, "Removing file:///tmp/d/old", delete("old")),
            (
                across,
                "Copying gs://a/f/0.bin [Content-Type=application/octet-stream]...",
                Some((ActionKind::Copy, "f/0.bin".to_string())),
            ),
            (up, "Operation completed over 7 objects/4.9 KiB.", None),
        ];
        for ((source, destination), message, expected) in cases {
            assert_eq!(
                parse_rsync_message(message, source, destination),
                expected,
                "{message}"
            );
        }
    }

    #[test]
    fn rm_messages_give_the_removed_keys() {
        assert_eq!(
            parse_removed_key("Removing gs://bkt/p/a b...", "gs://bkt/p/"),
            Some("a b")
        );
        assert_eq!(
            parse_removed_key("Removing gs://other/a...", "gs://bkt/p/"),
            None
        );
    }
}
