//! One database fixture for both backends: a SQLite file in a temporary folder, or a fresh
//! PostgreSQL database created on the server named by `REWARM_TEST_POSTGRES_URL` (a database
//! the tests may connect to and run CREATE DATABASE from) and dropped afterwards, also when
//! the test panics or never calls [`TestDatabase::drop_database`] (the fixture's `Drop`).
//!
//! Without `REWARM_TEST_POSTGRES_URL` a PostgreSQL test calls [`super::skip`]: it passes with
//! a loud SKIPPED line on a developer's machine and fails under `CI=true`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use sqlx::Connection as _;

/// What a PostgreSQL test prints when it has no server.
pub const SKIP: &str =
    "SKIPPED (set REWARM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test to run)";

/// A test's database: its URL, and what keeps it alive until [`TestDatabase::drop_database`].
pub enum TestDatabase {
    /// A SQLite file in its own temporary folder (removed with the folder).
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    /// A database `rewarm_t_…` of its own on the test server.
    Postgres {
        url: String,
        name: String,
        admin_url: String,
        /// Set once [`TestDatabase::drop_database`] has dropped it; otherwise `Drop` does.
        dropped: bool,
    },
}

impl TestDatabase {
    /// A new SQLite file, `store.db` in a temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        TestDatabase::Sqlite { url, _dir: dir }
    }

    /// A fresh PostgreSQL database; `None` (after [`super::skip`]) without a server.
    pub async fn postgres(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var("REWARM_TEST_POSTGRES_URL") else {
            super::skip(&format!("{test} on PostgreSQL: {SKIP}"));
            return None;
        };
        let name = format!("rewarm_t_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to REWARM_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        Some(TestDatabase::Postgres {
            url,
            name,
            admin_url,
            dropped: false,
        })
    }

    /// The URL a store or the binary connects with.
    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }

    /// Drops a PostgreSQL database (connections still open are ended); removes a SQLite file.
    pub async fn drop_database(mut self) {
        if let TestDatabase::Postgres {
            name,
            admin_url,
            dropped,
            ..
        } = &mut self
        {
            drop_postgres(admin_url, name).await;
            *dropped = true;
        }
    }
}

/// A PostgreSQL database the test did not drop itself (it returned early, panicked, or only
/// let its fixture go out of scope) is dropped here, from a thread of its own: `Drop` cannot
/// wait on the test's runtime.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres {
            name,
            admin_url,
            dropped: false,
            ..
        } = self
        else {
            return;
        };
        let (name, admin_url) = (name.clone(), admin_url.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(drop_postgres(&admin_url, &name));
        });
        let _ = dropper.join();
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            eprintln!("could not drop test database {name}: {e}");
        }
        let _ = admin.close().await;
    }
}

/// `postgres://u@h:p/test?x` with the database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs `body` with the URL of a fresh PostgreSQL database and drops the database afterwards,
/// also when `body` panics (the panic goes on after). Nothing runs without a server.
pub async fn with_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::postgres(test).await else {
        return;
    };
    let result = AssertUnwindSafe(body(db.url().to_string()))
        .catch_unwind()
        .await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
