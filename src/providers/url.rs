//! Parsing and normalising the server URLs connections carry.

use ::url::Url;

use super::ProviderError;

/// Parses an http(s) URL with a host, or reports `InvalidServerUrl` naming `field`.
pub fn parse_http(field: &str, raw: &str) -> Result<Url, ProviderError> {
    let invalid = |why: &str| {
        ProviderError::config(
            "InvalidServerUrl",
            format!("{field}: {raw:?} is not a usable http(s) URL: {why}"),
        )
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it may not carry a query or fragment"));
    }
    Ok(url)
}

/// The URL as text without a trailing `/`, and without `suffix` (such as `/api/v3`) when the
/// user included it.
pub fn base(url: &Url, suffix: &str) -> String {
    let text = url.as_str().trim_end_matches('/');
    text.strip_suffix(suffix)
        .unwrap_or(text)
        .trim_end_matches('/')
        .to_string()
}

/// The host of a URL, lowercased (always present after [`parse_http`]).
pub fn host(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_scheme_is_refused_naming_the_field() {
        let err = parse_http("spec.gitlab.serverUrl", "gitlab.example.com").unwrap_err();
        assert_eq!(err.reason, "InvalidServerUrl");
        assert!(
            err.message.starts_with("spec.gitlab.serverUrl: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn ftp_urls_and_queries_are_refused() {
        assert!(parse_http("f", "ftp://example.com").is_err());
        assert!(parse_http("f", "https://example.com/?a=b").is_err());
    }

    #[test]
    fn base_drops_trailing_slashes_and_a_given_api_suffix() {
        let url = parse_http("f", "https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(base(&url, "/api/v3"), "https://ghe.example.com");
        let url = parse_http("f", "https://git.example.com/gitlab/").unwrap();
        assert_eq!(base(&url, "/api/v4"), "https://git.example.com/gitlab");
    }
}
