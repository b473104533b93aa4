//! One page of a List Blobs answer with `include=metadata`
//! (<https://learn.microsoft.com/rest/api/storageservices/list-blobs>),
//! read into [`Listed`] objects with their MD5s: the `Content-MD5` Azure
//! lists (it computes one for every single Put Blob), else the
//! `md5chksum` metadata the plugin stores on every upload (a Put Block
//! List has no `Content-MD5` unless the client sets one). object_store's
//! own listing drops both.

use std::collections::HashMap;

use serde::Deserialize;
use stowage_plugin_api::{ErrorKind, PluginError};

use crate::store::{base64_md5, Listed, MD5_METADATA};

/// One page: its objects, and the marker of the next page (`None` on the last).
#[derive(Debug)]
pub struct Page {
    /// The page's objects, full keys.
    pub objects: Vec<Listed>,
    /// Where the next page starts.
    pub next_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnumerationResults {
    blobs: Blobs,
    next_marker: Option<String>,
}

#[derive(Deserialize)]
struct Blobs {
    #[serde(rename = "Blob", default)]
    blobs: Vec<Blob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Blob {
    name: String,
    properties: Properties,
    metadata: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(rename = "Last-Modified")]
    last_modified: String,
    #[serde(rename = "Content-Length")]
    content_length: u64,
    #[serde(rename = "Content-MD5")]
    content_md5: Option<String>,
    #[serde(rename = "Etag")]
    etag: Option<String>,
}

impl Blob {
    fn into_listed(self) -> Result<Listed, String> {
        let last_modified = httpdate::parse_http_date(&self.properties.last_modified)
            .map_err(|e| format!("{}: Last-Modified: {e}", self.name))?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let md5 = self
            .properties
            .content_md5
            .as_deref()
            .and_then(base64_md5)
            .or_else(|| {
                let metadata = self.metadata.as_ref()?;
                base64_md5(metadata.get(MD5_METADATA)?)
            });
        Ok(Listed {
            key: self.name,
            size: self.properties.content_length,
            etag: self
                .properties
                .etag
                .map(|e| e.trim_matches('"').to_string()),
            md5,
            last_modified,
        })
    }
}

/// Reads one page of the answer `xml`.
pub fn parse(xml: &[u8]) -> Result<Page, PluginError> {
    let invalid = |why: &dyn std::fmt::Display| {
        PluginError::new(
            ErrorKind::Other,
            format!("cannot read a List Blobs answer: {why}"),
        )
    };
    let text = std::str::from_utf8(xml).map_err(|e| invalid(&e))?;
    let results: EnumerationResults = quick_xml::de::from_str(text).map_err(|e| invalid(&e))?;
    let objects = results
        .blobs
        .blobs
        .into_iter()
        .map(Blob::into_listed)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    Ok(Page {
        objects,
        next_marker: results.next_marker.filter(|m| !m.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Microsoft's documented List Blobs answer, as Azurite
    /// 3.35 sends it: one blob with `Content-MD5` (a Put Blob), one without
    /// but with the plugin's metadata (a Put Block List), one with neither.
    const PAGE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/acct" ContainerName="c">
  <Prefix>p/</Prefix><MaxResults>5000</MaxResults>
  <Blobs>
    <Blob><Name>p/one file.txt</Name>
      <Properties><Creation-Time>Sun, 29 Nov 2026 20:00:00 GMT</Creation-Time>
        <Last-Modified>Sun, 29 Nov 2026 20:00:01 GMT</Last-Modified>
        <Etag>0x8DC0A1B2C3D4E5F</Etag><Content-Length>43</Content-Length>
        <Content-Type>application/octet-stream</Content-Type>
        <Content-MD5>nhB9nTcrtoJr2B01QqQZ1g==</Content-MD5>
        <BlobType>BlockBlob</BlobType></Properties>
      <Metadata/></Blob>
    <Blob><Name>p/big.bin</Name>
      <Properties><Last-Modified>Sun, 29 Nov 2026 20:00:02 GMT</Last-Modified>
        <Etag>"0x8DC0A1B2C3D4E60"</Etag><Content-Length>3145728</Content-Length>
        <Content-MD5/></Properties>
      <Metadata><md5chksum>nhB9nTcrtoJr2B01QqQZ1g==</md5chksum><other>x</other></Metadata></Blob>
    <Blob><Name>p/unknown.bin</Name>
      <Properties><Last-Modified>Sun, 29 Nov 2026 20:00:03 GMT</Last-Modified>
        <Etag>0x8DC0A1B2C3D4E61</Etag><Content-Length>7</Content-Length></Properties></Blob>
  </Blobs>
  <NextMarker>p/unknown.bin</NextMarker>
</EnumerationResults>"#;

    #[test]
    fn md5s_come_from_content_md5_else_from_the_metadata() {
        let page = parse(PAGE.as_bytes()).unwrap();
        let md5s: Vec<(&str, Option<&str>)> = page
            .objects
            .iter()
            .map(|o| (o.key.as_str(), o.md5.as_deref()))
            .collect();
        let fox = Some("9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            md5s,
            [
                ("p/one file.txt", fox),
                ("p/big.bin", fox),
                ("p/unknown.bin", None)
            ]
        );
        let big = &page.objects[1];
        assert_eq!(big.size, 3 << 20);
        assert_eq!(big.etag.as_deref(), Some("0x8DC0A1B2C3D4E60"));
        assert_eq!(big.last_modified, 1_795_982_402);
        assert_eq!(page.next_marker.as_deref(), Some("p/unknown.bin"));
    }

    #[test]
    fn the_last_page_has_no_marker_and_may_have_no_blobs() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ContainerName="c"><Blobs /><NextMarker /></EnumerationResults>"#;
        let page = parse(xml.as_bytes()).unwrap();
        assert!(page.objects.is_empty());
        assert_eq!(page.next_marker, None);
    }

    #[test]
    fn an_answer_that_is_not_a_listing_is_one_clear_error() {
        let error = parse(b"<Error><Code>AuthenticationFailed</Code></Error>").unwrap_err();
        assert!(error.message.starts_with("cannot read a List Blobs answer"));
        assert!(!error.message.contains('\n'));
    }
}
