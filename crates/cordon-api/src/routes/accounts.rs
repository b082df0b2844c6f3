//! Console accounts (admins only).

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiResult;
use crate::extract::{Json, Path};
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use cordon_review::{AccountChange, Role};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;

pub(crate) fn parse_role(name: &str) -> Result<Role, ApiError> {
    Role::parse(name).ok_or_else(|| {
        ApiError::Refused(
            StatusCode::BAD_REQUEST,
            format!("role must be moderator, senior or admin, not `{name}`"),
        )
    })
}

/// Every account (never a hash).
#[utoipa::path(
    get,
    path = "/v1/accounts",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "`{accounts: [...]}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::RoleMayNotSee,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn accounts(State(s): State<ApiState>, Admin(_): Admin) -> ApiResult<Value> {
    Ok(Json(json!({ "accounts": s.store.accounts().await? })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    /// Lower-case letters, digits, `._@-`.
    username: String,
    /// moderator, senior or admin.
    role: String,
    /// Absent for an account that signs in only through the SSO proxy.
    #[serde(default)]
    password: Option<String>,
}

/// Creates an account; without a password it signs in only through the SSO proxy.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = NewAccountBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The account", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        (status = 409, description = "The user name is taken", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn add_account(
    State(s): State<ApiState>,
    Admin(me): Admin,
    Json(body): Json<NewAccountBody>,
) -> ApiResult<Value> {
    let role = parse_role(&body.role)?;
    let account = s
        .store
        .add_account(&me.username, &body.username, role, body.password)
        .await?;
    info!(admin = %me.username, username = %account.username, role = role.as_str(), "account created");
    Ok(Json(json!(account)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountChangeBody {
    /// moderator, senior or admin.
    #[serde(default)]
    role: Option<String>,
    /// Disabled accounts cannot sign in; their sessions end.
    #[serde(default)]
    disabled: Option<bool>,
    /// At least 12 characters.
    #[serde(default)]
    password: Option<String>,
}

/// Changes an account's role, state or password (admins do not disable or demote themselves).
#[utoipa::path(
    patch,
    path = "/v1/accounts/{username}",
    tag = "accounts",
    params(("username" = String, Path, description = "The account")),
    request_body = AccountChangeBody,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The account", body = serde_json::Value),
        crate::error::ValueRefused,
        crate::error::NotSignedIn,
        crate::error::RoleOrCsrf,
        (status = 404, description = "Unknown case or account", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub(crate) async fn update_account(
    State(s): State<ApiState>,
    Admin(me): Admin,
    Path(username): Path<String>,
    Json(body): Json<AccountChangeBody>,
) -> ApiResult<Value> {
    if username == me.username && (body.disabled == Some(true) || body.role.is_some()) {
        return Err(ApiError::Refused(
            StatusCode::BAD_REQUEST,
            "admins do not disable or demote themselves; ask another admin".into(),
        ));
    }
    let change = AccountChange {
        role: body.role.as_deref().map(parse_role).transpose()?,
        disabled: body.disabled,
        password: body.password,
    };
    let account = s
        .store
        .update_account(&me.username, &username, change)
        .await?;
    info!(admin = %me.username, username = %account.username, "account changed");
    Ok(Json(json!(account)))
}
