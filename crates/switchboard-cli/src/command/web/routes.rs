//! The routes and their handlers: each parses the request, finds the member with the CLI's
//! lookups, checks the body against the declared types, and calls the session, as the verbs
//! of `switchboard call`, `get`, `set`, `command`, `action` and `watch` do.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, Path, Query, State,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    MAX_BODY, console,
    error::ApiError,
    events::{self, EventStream},
    guard::{self, Guard},
    state::Gateway,
};
use crate::{
    command::{list, remote},
    exit::Failure,
};

type Shared = State<Arc<Gateway>>;
type ServicePath = Result<Path<(String, String)>, PathRejection>;
type MemberPath = Result<Path<(String, String, String)>, PathRejection>;
type GoalPath = Result<Path<(String, String, String, String)>, PathRejection>;
type Body = Result<Bytes, BytesRejection>;

/// The gateway's routes, behind the guard and the body limit, and the browser console's.
pub(crate) fn router(gateway: Arc<Gateway>, guard: Arc<Guard>) -> Router {
    let service = "/api/services/{interface}/{instance}";
    Router::new()
        .route("/api/services", get(list_services))
        .route(service, get(describe))
        .route(&format!("{service}/methods/{{method}}"), post(call_method))
        .route(&format!("{service}/properties/{{property}}"), get(get_property).put(set_property))
        .route(&format!("{service}/properties/{{property}}/events"), get(property_events))
        .route(&format!("{service}/signals/{{signal}}/events"), get(signal_events))
        .route(&format!("{service}/events"), get(all_events))
        .route(&format!("{service}/commands/{{command}}"), post(send_command))
        .route(&format!("{service}/actions/{{action}}/goals"), post(start_goal))
        .route(
            &format!("{service}/actions/{{action}}/goals/{{goal}}"),
            get(goal_state).delete(cancel_goal),
        )
        .route(&format!("{service}/actions/{{action}}/goals/{{goal}}/events"), get(goal_events))
        .route("/openapi/{document}", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(gateway)
        .merge(console::router())
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; the routes are under /api/services and /openapi, the console at / \
         (see docs/web.md)",
    )
}

async fn wrong_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "usage", "this route does not take that method")
}

/// The request body as a JSON object; an empty body is `{}`.
fn object(body: Body) -> Result<Map<String, Value>, ApiError> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Usage("the request body must be a JSON object".into()).into()),
        Err(e) => Err(Failure::Usage(format!("the request body is not JSON: {e}")).into()),
    }
}

async fn list_services(State(gateway): Shared) -> Result<Json<Value>, ApiError> {
    let services = list::discover(&gateway.conn).await?;
    Ok(Json(json!({ "services": services })))
}

async fn describe(State(gateway): Shared, path: ServicePath) -> Result<Response, ApiError> {
    let Path((interface, instance)) = path?;
    let session = gateway.session(&interface, &instance).await?;
    let description = session.iface.description_json();
    Ok(([(header::CONTENT_TYPE, "application/json")], description).into_response())
}

async fn call_method(
    State(gateway): Shared,
    path: MemberPath,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path((interface, instance, name)) = path?;
    let given = object(body)?;
    let session = gateway.session(&interface, &instance).await?;
    let method = remote::method(&session.iface, &name)?;
    let args = session.types().check_object(&method.arguments, given).map_err(Failure::Usage)?;
    let reply = session.client.call_raw(method.name.clone(), remote::encode(&args)).await;
    let reply = gateway.checked(&interface, &instance, reply.map_err(Failure::from))?;
    Ok(Json(remote::decode(&reply, "reply")?))
}

async fn get_property(State(gateway): Shared, path: MemberPath) -> Result<Json<Value>, ApiError> {
    let Path((interface, instance, name)) = path?;
    let session = gateway.session(&interface, &instance).await?;
    let property = remote::property(&session.iface, &name)?;
    let value = session.client.get_property_raw(property.name.clone()).await;
    let (_, value) = gateway.checked(&interface, &instance, value.map_err(Failure::from))?;
    Ok(Json(remote::decode(&value, "property value")?))
}

async fn set_property(
    State(gateway): Shared,
    path: MemberPath,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path((interface, instance, name)) = path?;
    let given = object(body)?;
    let session = gateway.session(&interface, &instance).await?;
    let property = remote::property(&session.iface, &name)?;
    if property.read_only {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "usage",
            format!("property `{}` is read-only", property.name),
        ));
    }
    let value = session.types().check_object(&property.fields, given).map_err(Failure::Usage)?;
    let set = session.client.set_property_raw(property.name.clone(), remote::encode(&value)).await;
    gateway.checked(&interface, &instance, set.map_err(Failure::from))?;
    Ok(Json(value))
}

async fn send_command(
    State(gateway): Shared,
    path: MemberPath,
    body: Body,
) -> Result<Response, ApiError> {
    let Path((interface, instance, name)) = path?;
    let given = object(body)?;
    let session = gateway.session(&interface, &instance).await?;
    let command = remote::command(&session.iface, &name)?;
    let args = session.types().check_object(&command.arguments, given).map_err(Failure::Usage)?;
    let sent = session.client.command(command.name.clone(), &args).await;
    gateway.checked(&interface, &instance, sent.map_err(Failure::from))?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

async fn start_goal(
    State(gateway): Shared,
    path: MemberPath,
    body: Body,
) -> Result<Response, ApiError> {
    let Path((interface, instance, name)) = path?;
    let given = object(body)?;
    let session = gateway.session(&interface, &instance).await?;
    let action = remote::action(&session.iface, &name)?;
    let goal = session.types().check_object(&action.goal, given).map_err(Failure::Usage)?;
    let handle = remote::send_goal(&session, &action.name, &goal).await;
    let handle = gateway.checked(&interface, &instance, handle)?;
    let goal = gateway.goals.start((interface, instance), &action.name, handle)?;
    Ok((StatusCode::ACCEPTED, Json(goal.state())).into_response())
}

/// The goal the path names, or 404.
async fn find_goal(gateway: &Gateway, path: GoalPath) -> Result<Arc<super::goals::Goal>, ApiError> {
    let Path((interface, instance, action, id)) = path?;
    let session = gateway.session(&interface, &instance).await?;
    remote::action(&session.iface, &action)?;
    gateway.goals.get(&(interface, instance), &action, &id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no `{action}` goal `{id}` was started through this gateway (or it was forgotten)"
            ),
        )
    })
}

async fn goal_state(State(gateway): Shared, path: GoalPath) -> Result<Json<Value>, ApiError> {
    Ok(Json(find_goal(&gateway, path).await?.state()))
}

async fn cancel_goal(State(gateway): Shared, path: GoalPath) -> Result<Json<Value>, ApiError> {
    let goal = find_goal(&gateway, path).await?;
    Ok(Json(goal.cancel().await))
}

async fn goal_events(State(gateway): Shared, path: GoalPath) -> Result<EventStream, ApiError> {
    let goal = find_goal(&gateway, path).await?;
    events::goal(&gateway, goal)
}

async fn signal_events(State(gateway): Shared, path: MemberPath) -> Result<EventStream, ApiError> {
    let Path((interface, instance, name)) = path?;
    let session = gateway.session(&interface, &instance).await?;
    if !session.iface.signals.iter().any(|s| s.name == name) {
        let known = session.iface.signals.iter().map(|s| s.name.as_str()).collect::<Vec<_>>();
        return Err(Failure::NotFound(format!(
            "{interface} has no signal `{name}`; its signals: {}",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ))
        .into());
    }
    events::members(&gateway, &session, &[name]).await
}

async fn property_events(
    State(gateway): Shared,
    path: MemberPath,
) -> Result<EventStream, ApiError> {
    let Path((interface, instance, name)) = path?;
    let session = gateway.session(&interface, &instance).await?;
    let property = remote::property(&session.iface, &name)?;
    events::members(&gateway, &session, std::slice::from_ref(&property.name)).await
}

/// `?names=a,b`: the members to stream.
#[derive(Debug, Deserialize)]
struct Names {
    names: Option<String>,
}

async fn all_events(
    State(gateway): Shared,
    path: ServicePath,
    query: Result<Query<Names>, QueryRejection>,
) -> Result<EventStream, ApiError> {
    let Path((interface, instance)) = path?;
    let Query(names) = query?;
    let names: Vec<String> = names
        .names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let session = gateway.session(&interface, &instance).await?;
    if session.iface.signals.is_empty() && session.iface.properties.is_empty() {
        return Err(
            Failure::NotFound(format!("{interface} has no signals and no properties")).into()
        );
    }
    events::members(&gateway, &session, &names).await
}

/// `?instance=NAME`: which instance describes the interface.
#[derive(Debug, Deserialize)]
struct InstanceQuery {
    instance: Option<String>,
}

/// `/openapi/<Interface>.json`: the document `switchboard generate --lang openapi` writes, from
/// the interface an instance describes (`?instance=`, else one already connected, else the
/// first one discovered).
async fn openapi(
    State(gateway): Shared,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(document) = path?;
    let Query(query) = query?;
    let Some(interface) = document.strip_suffix(".json").filter(|i| !i.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document `{document}`; the documents are /openapi/<Interface>.json"),
        ));
    };
    let session = match (query.instance, gateway.any_session_of(interface)) {
        (Some(instance), _) => gateway.session(interface, &instance).await?,
        (None, Some(session)) => session,
        (None, None) => {
            let services = list::discover(&gateway.conn).await?;
            let instance = services
                .iter()
                .find(|s| s["interface"] == interface)
                .and_then(|s| s["instance"].as_str())
                .ok_or_else(|| {
                    Failure::NotFound(format!(
                        "no running {interface} service found at {}",
                        crate::session::url(&gateway.conn)
                    ))
                })?;
            gateway.session(interface, instance).await?
        }
    };
    Ok(Json(switchboard_codegen::openapi::document(&session.iface, None)))
}
