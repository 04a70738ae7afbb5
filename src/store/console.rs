//! The web console's tables (migration 0015, `src/console`): invited users and their roles,
//! single-use sign-in links, sessions, and the log of console actions that belong to no lead.
//!
//! Only hashes of secrets are stored: a sign-in link's token and a session cookie are kept
//! as the SHA-256 (hex) of what the browser holds, so reading the database signs nobody in.
//! Every statement is the same on both databases; both backends expand
//! [`console_methods!`] (`sqlite/console.rs`, `postgres/console.rs`).

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

/// An invited console user (lead owners without a row are `sales` users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Lower case.
    pub email: String,
    /// `admin`, `marketing` or `sales` (parsed by `console::Role`).
    pub role: String,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
}

/// Who a live session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub email: String,
    /// The invited role, if the person was invited (else: a lead owner, or nobody any more).
    pub role: Option<String>,
    /// Whether some lead names this person as its owner; read only when `role` is None
    /// (false for an invited person).
    pub owns_leads: bool,
    pub expires_at: DateTime<Utc>,
}

/// What using a sign-in link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInUse {
    /// Valid: now used; a session may be opened for this address.
    SignedIn {
        email: String,
    },
    /// Used before (links are single use).
    Used,
    Expired,
    Unknown,
}

/// A console action that belongs to no lead (invite, sign-in, sign-out).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub detail: Value,
}

/// See the module docs.
pub trait ConsoleStore {
    /// The invited user with this (lower-case) address.
    fn console_user(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<ConsoleUser>, StoreError>> + Send;

    /// Every invited user, by address.
    fn console_users(&self) -> impl Future<Output = Result<Vec<ConsoleUser>, StoreError>> + Send;

    /// Invites `email` with `role` (or changes the role of someone invited before).
    fn put_console_user(
        &self,
        email: &str,
        role: &str,
        invited_by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether any lead names `email` (lower case) as its owner (index `leads_owner`; on
    /// PostgreSQL `leads_owner_id`, which it starts).
    fn owns_leads(&self, email: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a sign-in link (its token's hash) for `email`, valid until `expires_at`;
    /// expired links and sessions are deleted on the way.
    fn create_signin(
        &self,
        token_hash: &str,
        email: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Uses the link whose token hashes to `token_hash`: at most once, before it expires.
    fn use_signin(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<SignInUse, StoreError>> + Send;

    /// Opens a session for `email` until `expires_at`.
    fn create_session(
        &self,
        token_hash: &str,
        email: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The live session with this hash: its person, their invited role and whether they own
    /// leads (one statement).
    fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ConsoleSession>, StoreError>> + Send;

    /// Ends a session (sign-out); ending an unknown one is not an error.
    fn end_session(&self, token_hash: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Logs a console action that belongs to no lead.
    fn log_console_event(
        &self,
        actor: &str,
        kind: &str,
        detail: &Value,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Emails sent per UTC day since `since`: (days since 1970-01-01, emails), by day.
    fn sends_per_day(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// Addresses suppressed since `since`, per reason (`hard_bounce`, `complaint`,
    /// `unsubscribed`, …): the leads' `suppressed` events.
    fn suppressed_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// The newest console actions, newest first.
    fn console_events(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ConsoleEvent>, StoreError>> + Send;
}

pub(crate) const CONSOLE_USER: &str =
    "SELECT email, role, invited_by, created_at FROM console_users WHERE email = $1";
pub(crate) const CONSOLE_USERS: &str =
    "SELECT email, role, invited_by, created_at FROM console_users ORDER BY email";
pub(crate) const PUT_CONSOLE_USER: &str =
    "INSERT INTO console_users (email, role, invited_by, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (email) DO UPDATE SET role = excluded.role";
pub(crate) const OWNS_LEADS: &str =
    "SELECT EXISTS (SELECT 1 FROM leads WHERE lower(owner_email) = $1)";
pub(crate) const DELETE_EXPIRED_SIGNINS: &str = "DELETE FROM console_signins WHERE expires_at < $1";
pub(crate) const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM console_sessions WHERE expires_at < $1";
pub(crate) const INSERT_SIGNIN: &str = "INSERT INTO console_signins (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// Marks the link used, only if unused and unexpired: of two clicks racing, one wins.
pub(crate) const USE_SIGNIN: &str = "UPDATE console_signins SET used_at = $2
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING email";
pub(crate) const SIGNIN_STATE: &str =
    "SELECT used_at IS NOT NULL FROM console_signins WHERE token_hash = $1";
pub(crate) const INSERT_SESSION: &str = "INSERT INTO console_sessions (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// Whether the viewer owns leads is asked only of a person not invited (the invited role
/// decides otherwise): for an admin or marketer, who owns none, the search read every lead
/// on PostgreSQL (it expects an owner's ~2 % of the leads and picks a sequential scan that
/// stops at the first: 475 ms a request at a million). `lower(s.email)`, not `s.email`
/// (stored lower-case already): on SQLite a comparison with a column of TEXT affinity cannot
/// use the expression index `leads_owner`, and every request scanned the leads.
pub(crate) const CONSOLE_SESSION: &str = "SELECT s.email, u.role,
       CASE WHEN u.role IS NULL THEN EXISTS (SELECT 1 FROM leads WHERE lower(owner_email) = lower(s.email))
            ELSE FALSE END, s.expires_at
     FROM console_sessions s LEFT JOIN console_users u ON u.email = s.email
     WHERE s.token_hash = $1 AND s.expires_at > $2";
pub(crate) const END_SESSION: &str = "DELETE FROM console_sessions WHERE token_hash = $1";
pub(crate) const INSERT_CONSOLE_EVENT: &str =
    "INSERT INTO console_events (at, actor, kind, detail) VALUES ($1, $2, $3, $4)";
pub(crate) const SUPPRESSED_SINCE: &str =
    "SELECT COALESCE(CAST(detail->>'reason' AS TEXT), ''), count(*) FROM events
     WHERE kind = 'suppressed' AND at >= $1 GROUP BY 1 ORDER BY 1";
pub(crate) const CONSOLE_EVENTS: &str =
    "SELECT at, actor, kind, detail FROM console_events ORDER BY id DESC LIMIT $1";

/// The methods, word for word on both backends (`SENDS_PER_DAY` is each backend's own:
/// a day number from milliseconds or from a `timestamptz`).
macro_rules! console_methods {
    () => {
        async fn console_user(&self, email: &str) -> Result<Option<ConsoleUser>, StoreError> {
            let row: Option<(String, String, String, Time)> = sqlx::query_as(CONSOLE_USER)
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|(email, role, invited_by, at)| ConsoleUser {
                email,
                role,
                invited_by,
                created_at: at.0,
            }))
        }

        async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
            let rows: Vec<(String, String, String, Time)> =
                sqlx::query_as(CONSOLE_USERS).fetch_all(&self.pool).await?;
            Ok(rows
                .into_iter()
                .map(|(email, role, invited_by, at)| ConsoleUser {
                    email,
                    role,
                    invited_by,
                    created_at: at.0,
                })
                .collect())
        }

        async fn put_console_user(
            &self,
            email: &str,
            role: &str,
            invited_by: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(PUT_CONSOLE_USER)
                .bind(email)
                .bind(role)
                .bind(invited_by)
                .bind(Time(now))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn owns_leads(&self, email: &str) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(OWNS_LEADS)
                .bind(email)
                .fetch_one(&self.pool)
                .await?)
        }

        async fn create_signin(
            &self,
            token_hash: &str,
            email: &str,
            expires_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            for sql in [DELETE_EXPIRED_SIGNINS, DELETE_EXPIRED_SESSIONS] {
                sqlx::query(sql).bind(Time(now)).execute(&self.pool).await?;
            }
            sqlx::query(INSERT_SIGNIN)
                .bind(token_hash)
                .bind(email)
                .bind(Time(now))
                .bind(Time(expires_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn use_signin(
            &self,
            token_hash: &str,
            now: DateTime<Utc>,
        ) -> Result<SignInUse, StoreError> {
            let email: Option<String> = sqlx::query_scalar(USE_SIGNIN)
                .bind(token_hash)
                .bind(Time(now))
                .fetch_optional(&self.pool)
                .await?;
            if let Some(email) = email {
                return Ok(SignInUse::SignedIn { email });
            }
            let used: Option<bool> = sqlx::query_scalar(SIGNIN_STATE)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
            Ok(match used {
                Some(true) => SignInUse::Used,
                Some(false) => SignInUse::Expired,
                None => SignInUse::Unknown,
            })
        }

        async fn create_session(
            &self,
            token_hash: &str,
            email: &str,
            expires_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(INSERT_SESSION)
                .bind(token_hash)
                .bind(email)
                .bind(Time(now))
                .bind(Time(expires_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn console_session(
            &self,
            token_hash: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<ConsoleSession>, StoreError> {
            let row: Option<(String, Option<String>, bool, Time)> = sqlx::query_as(CONSOLE_SESSION)
                .bind(token_hash)
                .bind(Time(now))
                .fetch_optional(&self.pool)
                .await?;
            Ok(
                row.map(|(email, role, owns_leads, expires_at)| ConsoleSession {
                    email,
                    role,
                    owns_leads,
                    expires_at: expires_at.0,
                }),
            )
        }

        async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
            sqlx::query(END_SESSION)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn log_console_event(
            &self,
            actor: &str,
            kind: &str,
            detail: &Value,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(INSERT_CONSOLE_EVENT)
                .bind(Time(now))
                .bind(actor)
                .bind(kind)
                .bind(detail)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn sends_per_day(&self, since: DateTime<Utc>) -> Result<Vec<(i64, i64)>, StoreError> {
            Ok(sqlx::query_as(SENDS_PER_DAY)
                .bind(Time(since))
                .fetch_all(&self.pool)
                .await?)
        }

        async fn suppressed_since(
            &self,
            since: DateTime<Utc>,
        ) -> Result<Vec<(String, i64)>, StoreError> {
            Ok(sqlx::query_as(SUPPRESSED_SINCE)
                .bind(Time(since))
                .fetch_all(&self.pool)
                .await?)
        }

        async fn console_events(&self, limit: usize) -> Result<Vec<ConsoleEvent>, StoreError> {
            let rows: Vec<(Time, String, String, Detail)> = sqlx::query_as(CONSOLE_EVENTS)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .into_iter()
                .map(|(at, actor, kind, detail)| ConsoleEvent {
                    at: at.0,
                    actor,
                    kind,
                    detail: detail.0,
                })
                .collect())
        }
    };
}
