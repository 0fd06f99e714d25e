//! The browser console: a page, its script modules and its style sheet, compiled into the binary
//! and served at `/` and under `/console/`. They are public (the page holds no data; it asks for
//! the token itself and sends it on every API request), and locked down by their headers: scripts
//! and connections only from this origin, no framing, no sniffing.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::error::ApiError;

/// One embedded file: its name under `/console/`, its media type and its content.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    content: &'static str,
}

/// The page.
const INDEX: &str = include_str!("console/index.html");

/// Everything the page loads.
const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        media_type: "text/css; charset=utf-8",
        content: include_str!("console/style.css"),
    },
    Asset {
        name: "app.js",
        media_type: "text/javascript; charset=utf-8",
        content: include_str!("console/app.js"),
    },
    Asset {
        name: "api.js",
        media_type: "text/javascript; charset=utf-8",
        content: include_str!("console/api.js"),
    },
    Asset {
        name: "forms.js",
        media_type: "text/javascript; charset=utf-8",
        content: include_str!("console/forms.js"),
    },
];

/// What the page may do: load and connect to this origin only, never be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The console's routes (outside the token check: see the module documentation).
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(page)).route("/console/{file}", get(asset))
}

fn served(media_type: &'static str, content: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, media_type)], content).into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page() -> Response {
    served("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => served(asset.media_type, asset.content),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the console has no file `{file}`"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the page and the scripts import is embedded.
    #[test]
    fn every_referenced_file_is_embedded() {
        let sources = std::iter::once(INDEX).chain(ASSETS.iter().map(|a| a.content));
        for source in sources {
            for (at, _) in source.match_indices("/console/") {
                let rest = &source[at + "/console/".len()..];
                let name: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
                assert!(ASSETS.iter().any(|a| a.name == name), "`/console/{name}` is not embedded");
            }
        }
    }
}
