//! ETags as a bucket encrypted with SSE-KMS (or SSE-C) shows them: a
//! single-part object's ETag is then not the MD5 of its content. The proxy
//! rewrites each such ETag — in `ETag` headers and in the XML of listings
//! and copy results — by rotating every hex digit by one (same length, so
//! no `Content-Length` changes, and never the MD5), and marks answers
//! `x-amz-server-side-encryption: aws:kms`, as such a bucket does.
//! Multipart ETags (`<hex>-<parts>`) are left alone.

/// The header an SSE-KMS bucket adds to its answers.
pub const ENCRYPTION_HEADER: &str = "x-amz-server-side-encryption";

/// The rewritten `ETag` header value, if `value` is a single-part ETag.
pub fn opaque_etag_header(value: &str) -> Option<String> {
    let digest = value.trim_matches('"');
    is_single_part_etag(digest.as_bytes()).then(|| format!("\"{}\"", rotate(digest)))
}

/// `xml` with every `<ETag>` holding a single-part ETag rewritten.
pub fn opaque_etags_in_xml(xml: &[u8]) -> Vec<u8> {
    const OPEN: &[u8] = b"<ETag>";
    let mut out = xml.to_vec();
    let mut at = 0;
    while let Some(found) = find(&out[at..], OPEN) {
        let mut start = at + found + OPEN.len();
        for quote in [&b"&quot;"[..], b"&#34;", b"\""] {
            if out[start..].starts_with(quote) {
                start += quote.len();
                break;
            }
        }
        if is_single_part_etag(&out[start..]) {
            let digest = std::str::from_utf8(&out[start..start + 32]).expect("hex is ASCII");
            let rotated = rotate(digest);
            out[start..start + 32].copy_from_slice(rotated.as_bytes());
        }
        at = start;
    }
    out
}

/// Starts with 32 hex digits not followed by a `-<parts>` suffix.
fn is_single_part_etag(text: &[u8]) -> bool {
    text.len() >= 32 && text[..32].iter().all(u8::is_ascii_hexdigit) && text.get(32) != Some(&b'-')
}

/// Every hex digit of `digest` (32 of them) moved on by one.
fn rotate(digest: &str) -> String {
    digest[..32]
        .chars()
        .map(|c| {
            let value = c.to_digit(16).expect("a hex digit");
            char::from_digit((value + 1) % 16, 16).expect("below 16")
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_etags_are_rotated_and_multipart_ones_kept() {
        let md5 = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            opaque_etag_header(&format!("\"{md5}\"")).as_deref(),
            Some("\"123456789abcdef0123456789abcdef0\"")
        );
        assert_eq!(opaque_etag_header(&format!("\"{md5}-3\"")), None);
        let xml = format!(
            "<Contents><ETag>&quot;{md5}&quot;</ETag></Contents><Contents><ETag>\"{md5}-2\"</ETag></Contents>"
        );
        let rewritten = String::from_utf8(opaque_etags_in_xml(xml.as_bytes())).unwrap();
        assert_eq!(
            rewritten,
            format!("<Contents><ETag>&quot;123456789abcdef0123456789abcdef0&quot;</ETag></Contents><Contents><ETag>\"{md5}-2\"</ETag></Contents>")
        );
    }
}
