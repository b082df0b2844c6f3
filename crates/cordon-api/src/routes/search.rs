//! Public search and the item view.

use crate::auth::Viewer;
use crate::error::ApiError;
use crate::extract::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::{index_read, lookup, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use cordon_index::PlainQuery;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default = "one")]
    page: usize,
    #[serde(default = "twenty")]
    per_page: usize,
}

pub(crate) fn one() -> usize {
    1
}

pub(crate) fn twenty() -> usize {
    20
}

/// Public search: visible items only, by relevance.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "public",
    params(
        ("q" = Option<String>, Query, description = "Plain text: words and \"quoted phrases\" in the title, text and channel title; empty lists every visible item (at most api.max_query_bytes, 32 terms)"),
        ("page" = Option<usize>, Query, description = "From 1 (default 1); page × per_page at most api.max_search_depth"),
        ("per_page" = Option<usize>, Query, description = "1 to api.max_page_size (default 20)"),
    ),
    responses(
        (status = 200, description = "`{total, page, per_page, items}`", body = serde_json::Value),
        (status = 400, description = "A bad query, page or depth", body = crate::error::ErrorBody),
        (status = 429, description = "Over api.searches_per_second for this client", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn search(
    State(s): State<ApiState>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Value> {
    let limits = &s.settings.api;
    if p.page == 0 || p.per_page == 0 || p.per_page > limits.max_page_size {
        return Err(ApiError::bad_request(format!(
            "page must be >= 1 and per_page between 1 and {}",
            limits.max_page_size
        )));
    }
    if p.q.len() > limits.max_query_bytes {
        return Err(ApiError::bad_request(format!(
            "q is at most {} bytes",
            limits.max_query_bytes
        )));
    }
    let offset = (p.page - 1).saturating_mul(p.per_page);
    if offset.saturating_add(p.per_page) > limits.max_search_depth {
        return Err(ApiError::bad_request(format!(
            "search pages go {} results deep at most; narrow the query",
            limits.max_search_depth
        )));
    }
    let query = PlainQuery::parse(&p.q).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let search = s.search.clone();
    let page = index_read(move || search.search(&query, offset, p.per_page)).await?;
    Ok(Json(json!({
        "total": page.total,
        "page": p.page,
        "per_page": p.per_page,
        "items": page.items.into_iter().map(|h| h.item).collect::<Vec<_>>(),
    })))
}

/// An item with its visibility, content, verdicts, cases and decisions (ids may hold slashes).
#[utoipa::path(
    get,
    path = "/v1/items/{id}",
    tag = "review",
    params(("id" = String, Path, description = "The item's id (slashes allowed)")),
    security(("session" = [])),
    responses(
        (status = 200, description = "`{id, visibility, content, verdict, verdicts, cases, decisions, statements, channel_suppressed}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        (status = 404, description = "Unknown item", body = crate::error::ErrorBody),
        crate::error::Unavailable,
    )
)]
pub(crate) async fn item(
    State(s): State<ApiState>,
    me: Viewer,
    Path(id): Path<String>,
) -> ApiResult<Value> {
    let state = lookup(&s, &id).await?;
    let (cases, decisions) = s.store.history(&id, me.role).await?;
    // The item's statements, and its channel's.
    let mut subjects = vec![id.clone()];
    subjects.extend(
        state
            .as_ref()
            .and_then(|st| st.content.as_ref())
            .map(|c| cordon_domain::Verdict::channel_key(&c.channel.id)),
    );
    let statements = s.store.statements_about(&subjects, me.role).await?;
    let Some(state) = state else {
        if cases.is_empty() && decisions.is_empty() && statements.is_empty() {
            return Err(ApiError::Refused(
                StatusCode::NOT_FOUND,
                format!("item {id} not found"),
            ));
        }
        return Ok(Json(json!({
            "id": id,
            "indexed": false,
            "cases": cases,
            "decisions": decisions,
            "statements": statements,
        })));
    };
    let (channel_suppressed, strikes) = match &state.content {
        Some(c) => {
            let search = s.search.clone();
            let channel = c.channel.id.clone();
            (
                index_read(move || search.channel_blocked(&channel)).await?,
                Some(s.store.channel_strikes(&c.channel.id).await?),
            )
        }
        None => (false, None),
    };
    Ok(Json(json!({
        "id": id,
        "indexed": true,
        "visibility": state.visibility,
        "channel_suppressed": channel_suppressed,
        "channel_strikes": strikes,
        "verdict": state.verdict(),
        "content": state.content,
        "verdicts": state.verdicts,
        "cases": cases,
        "decisions": decisions,
        "statements": statements,
    })))
}
