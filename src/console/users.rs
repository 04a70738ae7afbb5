//! `GET /console/users`: who may use the console, and the invitation form (admin only).
//! `POST /console/users/invite` invites (or changes the role of) an address and emails it a
//! sign-in link, as `rewarm console invite` does; logged as `invited` with the admin's
//! address.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::layout::{self, message, see_other, store_failure};
use super::{Action, Ctx, Permission, Role, Viewer};
use crate::domain::email::EmailAddress;
use crate::store::Store;

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("users.html", include_str!("templates/users.html"))];

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/users", get(page::<S>))
        .route("/console/users/invite", post(invite::<S>))
}

#[derive(Debug, serde::Serialize)]
struct UserRow {
    email: String,
    role: String,
    invited_by: String,
    since: String,
}

async fn page<S: Store>(State(ctx): State<Ctx<S>>, viewer: Viewer) -> Response {
    if !viewer.can(Permission::Invite) {
        return layout::forbidden(&viewer);
    }
    let users = match ctx.store().console_users().await {
        Ok(users) => users,
        Err(e) => return store_failure("console users", &e),
    };
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            email: u.email,
            role: u.role,
            invited_by: u.invited_by,
            since: u.created_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    let mut context = layout::page(&viewer, "Users", "users");
    context.insert("users", &rows);
    context.insert("roles", &Role::ALL.map(Role::as_str));
    layout::render("users.html", &context)
}

#[derive(Debug, serde::Deserialize)]
struct InviteForm {
    email: String,
    role: String,
}

async fn invite<S: Store>(
    State(ctx): State<Ctx<S>>,
    Action { viewer, form }: Action<InviteForm>,
) -> Response {
    if !viewer.can(Permission::Invite) {
        return layout::forbidden(&viewer);
    }
    let (Ok(address), Some(role)) = (
        EmailAddress::parse(form.email.trim()),
        Role::parse(&form.role),
    ) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not invited",
            "Give an email address and a role (admin, marketing or sales).",
        );
    };
    let loaded = ctx.settings();
    match super::signin::invite(
        ctx.store(),
        &loaded,
        &address,
        role,
        &viewer.email,
        ctx.now(),
    )
    .await
    {
        Ok(_) => see_other("/console/users"),
        Err(e) => store_failure("console invite", &e),
    }
}
