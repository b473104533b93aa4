//! The container-level requests object_store does not make: List Blobs
//! with metadata, Get Container Properties and Create Container. Each is
//! authorized by object_store's own [`AzureAuthorizer`] with the store's
//! credential, whatever its kind (Shared Key signature, SAS query, bearer
//! token), so the key and the signing stay in one place.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::azure::{AzureAuthorizer, AzureCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use reqwest::Method;
use stowage_plugin_api::{ErrorKind, PluginError};

use super::listing;
use crate::store::{full_message, Errors, Listed};

/// Attempts of one request when the server fails (5xx) or cannot be reached.
const ATTEMPTS: u32 = 3;

/// A storage account reached over `http` with `credential`.
pub struct Account<'a> {
    /// The account's name (signatures name it).
    pub name: String,
    /// The blob service URL, no trailing `/`.
    pub endpoint: String,
    /// The credential the store uses.
    pub credential: Arc<AzureCredential>,
    /// The plugin's HTTP client.
    pub http: &'a reqwest::Client,
    /// Redacts the secrets from messages.
    pub errors: &'a Errors,
}

/// The answer to a request: its status, Azure's error code and its body.
struct Answer {
    status: u16,
    code: String,
    body: bytes::Bytes,
}

impl Answer {
    /// The error of a request about `container` that got this answer.
    fn refused(&self, what: &str, container: &str) -> PluginError {
        let kind = match (self.status, self.code.as_str()) {
            (404, "ContainerNotFound") => ErrorKind::BucketMissing,
            (404, _) => ErrorKind::NotFound,
            (401 | 403, _) => ErrorKind::Unauthorized,
            _ => ErrorKind::Other,
        };
        let code = if self.code.is_empty() {
            "no error code"
        } else {
            &self.code
        };
        PluginError::new(
            kind,
            format!("{what} container {container}: HTTP {} {code}", self.status),
        )
    }
}

/// A query value percent-encoded (space as `%20`, never `+`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Account<'_> {
    /// The URL of `container` with `query`.
    fn url(&self, container: &str, query: &[(&str, &str)]) -> String {
        let query: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        format!("{}/{container}?{}", self.endpoint, query.join("&"))
    }

    /// Sends one bodiless request to `container`, authorized; retried
    /// while the server fails or cannot be reached.
    async fn send(
        &self,
        method: Method,
        container: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, PluginError> {
        let mut attempt = 1;
        loop {
            match self.send_once(method.clone(), container, query).await {
                Ok(answer) if answer.status < 500 || attempt == ATTEMPTS => return Ok(answer),
                Err(error) if attempt == ATTEMPTS => return Err(error),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        container: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, PluginError> {
        let shown = format!("{}/{container}", self.endpoint);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(self.url(container, query));
        if builder.method_ref() == Some(&Method::PUT) {
            // Explicit: an empty body is otherwise sent without a length.
            builder = builder.header(http::header::CONTENT_LENGTH, "0");
        }
        let mut request: HttpRequest = builder
            .body(HttpRequestBody::from(Vec::new()))
            .map_err(|e| PluginError::new(ErrorKind::InvalidInput, format!("{shown}: {e}")))?;
        AzureAuthorizer::new(&self.credential, &self.name)
            .try_authorize(&mut request)
            .map_err(|e| {
                self.errors
                    .convert("cannot authorize a container request", e)
            })?;
        let (parts, _) = request.into_parts();
        let response = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .send()
            .await
            .map_err(|e| {
                // Without the URL: a SAS is in its query.
                let text = full_message(&e.without_url());
                PluginError::new(
                    ErrorKind::Unreachable,
                    self.errors.redact(&format!("{shown}: {text}")),
                )
            })?;
        let status = response.status().as_u16();
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.bytes().await.map_err(|e| {
            let text = full_message(&e.without_url());
            PluginError::new(ErrorKind::Unreachable, format!("{shown}: {text}"))
        })?;
        Ok(Answer { status, code, body })
    }

    /// Every blob of `container` below `prefix` with its MD5, page after
    /// page (5,000 blobs a page).
    pub async fn list(&self, container: &str, prefix: &str) -> Result<Vec<Listed>, PluginError> {
        let mut listed = Vec::new();
        let mut marker = None::<String>;
        loop {
            let page = self
                .page(container, prefix, marker.as_deref(), None)
                .await?;
            listed.extend(page.objects);
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(listed),
            }
        }
    }

    /// The blobs of `keys` (full names) that exist in `container`, each as
    /// [`Account::list`] lists it: a List Blobs request each, with the
    /// name as prefix and room for one blob (a name sorts before every
    /// longer name it begins), `concurrency` at a time.
    pub async fn list_keys(
        &self,
        container: &str,
        keys: &[String],
        concurrency: usize,
    ) -> Result<Vec<Listed>, PluginError> {
        // Owned keys: a future borrowing from the slice's items is not Send here.
        let found: Vec<Option<Listed>> = futures_util::stream::iter(keys.to_vec())
            .map(|key| async move {
                let page = self.page(container, &key, None, Some("1")).await?;
                Ok::<_, PluginError>(page.objects.into_iter().find(|blob| blob.key == key))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// One page of List Blobs with metadata: below `prefix`, from `marker`,
    /// at most `max_results` blobs (the server's 5,000 when `None`).
    async fn page(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        max_results: Option<&str>,
    ) -> Result<listing::Page, PluginError> {
        let mut query = vec![
            ("restype", "container"),
            ("comp", "list"),
            ("include", "metadata"),
        ];
        let optional = [
            ("prefix", Some(prefix).filter(|p| !p.is_empty())),
            ("marker", marker),
            ("maxresults", max_results),
        ];
        query.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        let answer = self.send(Method::GET, container, &query).await?;
        if answer.status != 200 {
            return Err(answer.refused("cannot list", container));
        }
        listing::parse(&answer.body)
    }

    /// Creates `container` unless it exists: Get Container Properties,
    /// then Create Container when it answered 404. `Ok(true)` when this
    /// call created it.
    pub async fn ensure_container(&self, container: &str) -> Result<bool, PluginError> {
        let query = [("restype", "container")];
        let answer = self.send(Method::GET, container, &query).await?;
        match answer.status {
            200..=299 => return Ok(false),
            404 => {}
            _ => return Err(answer.refused("cannot look for", container)),
        }
        let answer = self.send(Method::PUT, container, &query).await?;
        match (answer.status, answer.code.as_str()) {
            (200..=299, _) => Ok(true),
            (409, "ContainerAlreadyExists") => Ok(false),
            _ => Err(answer.refused("cannot create", container)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_with_spaces_as_percent_20() {
        assert_eq!(encode("p/one file+x.txt"), "p%2Fone%20file%2Bx.txt");
        assert_eq!(encode("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn answers_map_to_the_error_kinds_the_host_acts_on() {
        let answer = |status: u16, code: &str| Answer {
            status,
            code: code.to_string(),
            body: bytes::Bytes::new(),
        };
        let missing = answer(404, "ContainerNotFound").refused("cannot list", "c");
        assert_eq!(missing.kind, ErrorKind::BucketMissing);
        assert_eq!(
            missing.message,
            "cannot list container c: HTTP 404 ContainerNotFound"
        );
        let denied = answer(403, "AuthenticationFailed").refused("cannot list", "c");
        assert_eq!(denied.kind, ErrorKind::Unauthorized);
        let other = answer(500, "").refused("cannot create", "c");
        assert_eq!(other.kind, ErrorKind::Other);
        assert!(other.message.ends_with("HTTP 500 no error code"));
    }
}
