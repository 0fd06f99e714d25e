//! What every request passes first: the bearer token when `--token` is set, and CORS only for
//! the origins `--cors` names (preflights answered here, before the token is asked for, as
//! browsers send them without credentials).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// The request checks.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// The token requests must carry, if any.
    pub(crate) token: Option<String>,
    /// The origins allowed to call from a browser (`*` for any).
    pub(crate) cors: Vec<String>,
}

impl Guard {
    /// The request's `Origin`, when `--cors` allows it.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.cors.iter().any(|allowed| allowed == "*" || allowed == text).then(|| origin.clone())
    }

    /// Whether the request carries the token (always, without `--token`).
    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The middleware.
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = guard.allowed_origin(request.headers());
    let mut response = if request.method() == Method::OPTIONS && origin.is_some() {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        preflight
    } else if !guard.authorised(request.headers()) {
        let mut refused = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "usage",
            "this gateway needs `Authorization: Bearer <token>` with the token it was started with",
        )
        .into_response();
        refused.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        refused
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn cors_only_for_named_origins() {
        let guard = Guard { token: None, cors: vec!["https://console.example".into()] };
        let mut headers = HeaderMap::new();
        assert!(guard.allowed_origin(&headers).is_none());
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(guard.allowed_origin(&headers).is_none());
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://console.example"));
        assert!(guard.allowed_origin(&headers).is_some());
        let none = Guard { token: None, cors: Vec::new() };
        assert!(none.allowed_origin(&headers).is_none());
    }
}
