//! The OpenAPI description of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations: the JSON routes are registered through [`routes`], so a route is served if and
//! only if the description has it (the one exception, the item view whose id may hold slashes,
//! is registered by hand beside it and listed in [`ApiDoc`]). Served at `GET /v1/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::routes::{accounts, appeals, ops, reports, review, search, statements};
use crate::{auth, ApiState};

/// The parts of the description no handler carries: title, tags, the session's security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cordon",
        description = "Public search without illegal-goods offers, user reports, and the review \
                       queue moderators work. Errors are `{\"error\": ...}`; limits and roles: \
                       docs/api.md and docs/security.md.",
    ),
    paths(search::item, ops::healthz, ops::readyz, openapi_json),
    components(schemas(ErrorBody)),
    modifiers(&SessionSecurity),
    tags(
        (name = "public", description = "Anonymous: search, the platform's signed reports and appeals, health"),
        (name = "session", description = "Signing in and out of the console and the review API"),
        (name = "review", description = "Items, cases and decisions (signed-in moderators)"),
        (name = "accounts", description = "Console accounts (admins)"),
    )
)]
struct ApiDoc;

/// The session cookie and the CSRF header every state change sends.
struct SessionSecurity;

impl Modify for SessionSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The session cookie POST /v1/session sets",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-csrf-token",
                "The session's CSRF token (from POST or GET /v1/session), on every request but GET",
            ))),
        );
    }
}

/// The JSON routes, each with its description.
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login, auth::whoami, auth::logout))
        .routes(routes!(accounts::accounts, accounts::add_account))
        .routes(routes!(accounts::update_account))
        .routes(routes!(search::search))
        .routes(routes!(review::cases))
        .routes(routes!(review::case))
        .routes(routes!(review::claim))
        .routes(routes!(review::decide_bulk))
        .routes(routes!(review::decide_case))
        .routes(routes!(review::escalate))
        .routes(routes!(review::audit_log))
        .routes(routes!(review::stats))
        .routes(routes!(reports::report))
        .routes(routes!(reports::report_status))
        .routes(routes!(review::decide_channel))
        .routes(routes!(review::decide_item))
        .routes(routes!(statements::statement))
        .routes(routes!(statements::submissions))
        .routes(routes!(statements::transparency))
        .routes(routes!(appeals::file_appeal, appeals::appeals))
        .routes(routes!(appeals::appeal_status))
        .routes(routes!(appeals::decide_appeal))
        .routes(routes!(openapi_json))
        // `{*id}`: item ids may hold slashes, which an OpenAPI path parameter cannot say; the
        // description lists this route through ApiDoc.
        .route("/v1/items/{*id}", axum::routing::get(search::item))
}

/// The description as JSON, built once.
pub(crate) fn spec_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        routes()
            .into_openapi()
            .to_pretty_json()
            .expect("the OpenAPI description serializes")
    })
}

/// This description of the API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "public",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], spec_json())
}
