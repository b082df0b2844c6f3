//! The one error type at the HTTP edge: every rejection and failure answers `{"error": ...}`
//! with a fitting status. What went wrong inside travels with the response to the logging
//! middleware (`observe` in lib.rs), never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cordon_review::ReviewError;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// The client's mistake or a refusal (a 4xx status), and what to fix.
    Refused(StatusCode, String),
    /// The review database is unreachable: 503, try again shortly.
    Unavailable(String),
    /// The review database refused a value of the request: 400.
    Unstorable(String),
    /// A failure inside Cordon: 500, the answer names no path, query or message.
    Internal(String),
}

/// The cause of a failed request, for the logging middleware: attached to the response, never
/// sent.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Whether it is Cordon's fault (logged as an error) rather than a dependency's or the
    /// input's (a warning).
    pub internal: bool,
    /// What went wrong.
    pub cause: String,
}

impl ApiError {
    /// A failure inside Cordon, with its cause for the log.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(cause.to_string())
    }

    /// A bad request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::Refused(StatusCode::BAD_REQUEST, message.into())
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused(status, _) => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unstorable(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Refused(_, message) => message,
            ApiError::Unavailable(_) => "the review database is unavailable; try again shortly",
            ApiError::Unstorable(_) => "invalid request: a value the review database cannot store",
            ApiError::Internal(_) => "internal error (logged)",
        }
    }

    /// The cause to log, if any.
    fn failure(self) -> Option<Failure> {
        match self {
            ApiError::Refused(..) => None,
            ApiError::Unavailable(cause) | ApiError::Unstorable(cause) => Some(Failure {
                internal: false,
                cause,
            }),
            ApiError::Internal(cause) => Some(Failure {
                internal: true,
                cause,
            }),
        }
    }

    /// `body` answered with this error's status, carrying its cause to the logging middleware
    /// (for answers that are not JSON: the console's pages).
    pub fn respond(self, body: impl IntoResponse) -> Response {
        let mut response = (self.status(), body).into_response();
        if let Some(failure) = self.failure() {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(ErrorBody {
            error: self.message().to_string(),
        });
        self.respond(body)
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        let status = match &e {
            ReviewError::NotFound(_) => StatusCode::NOT_FOUND,
            ReviewError::Invalid(_) => StatusCode::BAD_REQUEST,
            ReviewError::Conflict(_) => StatusCode::CONFLICT,
            ReviewError::Forbidden(_) => StatusCode::FORBIDDEN,
            ReviewError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReviewError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            _ if e.is_bad_input() => return ApiError::Unstorable(e.to_string()),
            _ if e.is_unavailable() => return ApiError::Unavailable(e.to_string()),
            _ => return ApiError::internal(format!("review database: {e}")),
        };
        ApiError::Refused(status, e.to_string())
    }
}

impl From<cordon_index::IndexError> for ApiError {
    fn from(e: cordon_index::IndexError) -> Self {
        ApiError::internal(format!("index: {e}"))
    }
}

/// Every error answer: `{"error": "..."}` (the status says which kind, see docs/api.md).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What was wrong, for people; a 5xx names no internal detail.
    error: String,
}

// The answers the OpenAPI description names, one type each, so that each has one wording
// (openapi.rs; never built: the handlers answer with ApiError).

/// 400.
#[derive(utoipa::IntoResponses)]
#[response(status = 400, description = "A value refused (the message says which)")]
#[allow(dead_code)] // a description, never built
pub(crate) struct ValueRefused(#[to_schema] ErrorBody);

/// 401.
#[derive(utoipa::IntoResponses)]
#[response(status = 401, description = "Not signed in")]
#[allow(dead_code)] // a description, never built
pub(crate) struct NotSignedIn(#[to_schema] ErrorBody);

/// 403 of a state change.
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "The role may not, or no CSRF token")]
#[allow(dead_code)] // a description, never built
pub(crate) struct RoleOrCsrf(#[to_schema] ErrorBody);

/// 403 of a read.
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "The role may not see it")]
#[allow(dead_code)] // a description, never built
pub(crate) struct RoleMayNotSee(#[to_schema] ErrorBody);

/// 404 of the review routes.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "Unknown case or item")]
#[allow(dead_code)] // a description, never built
pub(crate) struct CaseOrItemUnknown(#[to_schema] ErrorBody);

/// 409 of the review routes.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 409,
    description = "A stale version, a case another moderator holds, or too many claims"
)]
#[allow(dead_code)] // a description, never built
pub(crate) struct CaseConflict(#[to_schema] ErrorBody);

/// How a request with a JSON body may be refused before its handler runs.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description, never built
pub(crate) enum BodyRefusals {
    /// The body is larger than api.max_body_bytes.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// The body is not JSON (content-type).
    #[response(status = 415)]
    NotJson(#[to_schema] ErrorBody),
    /// JSON of the wrong shape: a missing or unknown field, a wrong type.
    #[response(status = 422)]
    WrongShape(#[to_schema] ErrorBody),
}

/// The answer of a route that needs the review database while it is unreachable.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "The review database is unreachable; try again shortly"
)]
#[allow(dead_code)] // a description, never built
pub(crate) struct Unavailable(#[to_schema] ErrorBody);
