//! The web console at scale: every page of [`PAGES`] fetched over real HTTP from the
//! daemon's router (`rewarm::http::serve`) with N leads in the database (default 1,000,000),
//! signed in as an admin. Each page is fetched [`RUNS`] times after one warm-up; the median
//! and the slowest are printed next to references measured in the same run on the same
//! database: an indexed count (`SELECT count(*) FROM leads WHERE state = 'nurturing'`,
//! index `leads_state`) and a GET of `/healthz` from the same client (what HTTP alone costs).
//!
//!     cargo bench --profile dev --bench console                     # SQLite (a temp file)
//!     REWARM_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --profile dev --bench console
//!     REWARM_BENCH_KEEP=/var/tmp/rewarm-bench cargo bench --profile dev --bench console   # keep and reuse the seeded databases
//!
//! Environment: `REWARM_BENCH_N` (default 1000000), `REWARM_BENCH_POSTGRES_URL` (an admin
//! URL: a database is created next to it and dropped after), `REWARM_BENCH_KEEP` (see
//! `support/million.rs`: `keep`), `REWARM_BENCH_PAGES` (a comma-separated subset of the
//! pages, e.g. `/console/campaigns`).
//!
//! The data are those of `support/million.rs` (the leads `forecast` and `plan_scale` use:
//! 700,000 enrolled with a waiting step, 300,000 `new`; 1 in 20 without an owner, the rest
//! one of 50) plus a history ([`history`]): for the enrolled leads whose waiting step is
//! not the first, the previous step sent in the last 29 days; 10 % of those replied, half of
//! the replies re-warmed (1 in 5 of them then won), 2.5 % unsubscribed; the replies as
//! matched inbound mail plus 2,000 unmatched messages; 10 % of the leads tagged `vip`.
//!
//! Adding a page: one line in [`PAGES`] (`{lead}` in a path is replaced by the id of a
//! re-warmed lead, whose timeline has an enrolment, a send, a reply and the re-warm).

#[path = "support/million.rs"]
mod million;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use million::{DAY_MS, Dialect, Seed};
use rewarm::app::{Current, Loaded};
use rewarm::config::Settings;
use rewarm::domain::clock::Clock;
use rewarm::http::HttpState;
use rewarm::store::Store;
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

/// The pages timed, as an admin sees them.
const PAGES: &[&str] = &[
    "/console/",
    "/console/campaigns",
    "/console/users",
    "/console/leads",
    "/console/leads?q=lead4242",
    "/console/leads?owner=owner7%40acme.example&state=nurturing",
    "/console/leads?segment=budget&tag=vip",
    "/console/leads/{lead}",
    "/console/queue",
    "/console/inbound",
    "/console/suppression",
];
/// Fetches per page (after one warm-up).
const RUNS: usize = 7;
/// The goal per page (issue 13).
const BUDGET: Duration = Duration::from_millis(200);
const ADMIN: &str = "admin@acme.example";

/// "Now" for the server: the reference day of the generated leads.
fn now() -> DateTime<Utc> {
    million::now()
}

/// The database: the leads of `support/million.rs` and the console's [`history`].
const CONSOLE: Seed = Seed {
    kind: "console",
    extra: history,
};

/// The history on top of the generated leads (see the module docs), in the backend's words.
/// Lead `i`'s previous step was sent `sent(i)` ms after the epoch, in the 29 days before
/// [`now`]; a reply comes two hours after it, a re-warm three, a win or an unsubscribe four.
fn history(d: &Dialect) -> Vec<String> {
    let r = now().timestamp_millis();
    let sent = |offset: i64| {
        (d.time)(&format!(
            "{r} - 4 * 3600000 - ((lead_id * 7919) % {span}) + {offset}",
            span = 29 * DAY_MS
        ))
    };
    let hour = 3_600_000;
    let json = d.json;
    let template = "CASE campaign WHEN 'budget' THEN 'budget_followup' WHEN 'competitor' THEN 'competitor_checkin' ELSE 'checkin' END";
    let intent = "CASE (lead_id / 10) % 7 WHEN 0 THEN 'interested' WHEN 1 THEN 'question' WHEN 2 THEN 'later'
                  WHEN 3 THEN 'not_interested' WHEN 4 THEN 'left_company' WHEN 5 THEN 'unclear' ELSE 'interested' END";
    let reply_text = "Thanks for getting back to me. We looked at the budget again this quarter and it may work now; could you send the pricing for twenty seats and tell me whether the onboarding is included? Best regards";
    // Leads whose waiting step is not the first, still enrolled: the previous step was sent.
    let with_sent =
        "lead_id IN (SELECT id FROM leads WHERE state = 'nurturing') AND lead_id % 3 > 0";
    let replied = "lead_id % 10 = 1";
    let rewarmed = "lead_id % 20 = 1";
    let won = "lead_id % 100 = 1";
    let unsubscribed = "lead_id % 40 = 3";
    // The leads with a sent step: enrolled (`nurturing` until stopped here), waiting step not
    // the first. Said by id, not by a join with the sends (whose statistics are not there yet).
    let stop = |filter: &str, state: &str, at: &str| {
        vec![
            format!(
                "UPDATE deliveries SET state = 'cancelled', updated_at = {at}
                 WHERE state = 'scheduled' AND {filter} AND lead_id % 3 > 0"
            ),
            format!(
                "UPDATE enrolments SET state = 'stopped', ended_at = {at}
                 WHERE state = 'active' AND {filter} AND lead_id % 3 > 0"
            ),
            format!(
                "UPDATE leads SET state = '{state}', updated_at = {at}
                 WHERE state = 'nurturing' AND {lead_filter} AND id % 3 > 0",
                lead_filter = filter.replace("lead_id", "id"),
                at = at.replace("lead_id", "id"),
            ),
        ]
    };
    let mut statements = vec![
        format!(
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
             SELECT lead_id, id, campaign, (lead_id % 3) - 1, {template}, 'sent', {t}, {t}, {t}
             FROM enrolments WHERE {with_sent}",
            t = sent(0)
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, enrolled_at, 'enrolled', {j} FROM enrolments",
            j = json("'{\"campaign\":\"' || campaign || '\",\"segment\":\"' || segment || '\"}'")
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, sent_at, 'sent', {j} FROM deliveries WHERE state = 'sent'",
            j = json("'{\"campaign\":\"' || campaign || '\",\"step\":' || step || '}'")
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, {at}, 'replied', {j} FROM deliveries WHERE state = 'sent' AND {replied}",
            at = sent(2 * hour),
            j = json(&format!(
                "'{{\"intent\":\"' || {intent} || '\",\"subject\":\"Re: checking in\",\"text\":\"{reply_text}\"}}'"
            ))
        ),
        format!(
            "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                  lead_id, delivery_id, matched_by, text, raw, effects, created_at)
             SELECT 'bench-reply-' || d.id, 'imap', {at}, '<reply-' || d.id || '@bench.example>', l.email, 'Re: checking in',
                    'human_reply', d.lead_id, d.id, 'token', '{reply_text}', {raw}, '{{}}', {at}
             FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.state = 'sent' AND d.{replied}",
            at = sent(2 * hour).replace("lead_id", "d.lead_id"),
            raw = (d.blob)("'From: someone'"),
            replied = replied,
        ),
        format!(
            "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                  lead_id, matched_by, text, raw, effects, created_at)
             SELECT 'bench-unmatched-' || id, 'imap', {at}, '<unmatched-' || id || '@elsewhere.example>',
                    'someone' || id || '@elsewhere.example', 'A question', 'human_reply', NULL, NULL,
                    'Hello, who should I talk to about your product?', {raw}, '{{}}', {at}
             FROM leads WHERE id <= 2000",
            at = (d.time)(&format!("{r} - id * 600000")),
            raw = (d.blob)("'From: someone'"),
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, {at}, 'rewarmed', {j} FROM deliveries WHERE state = 'sent' AND {rewarmed}",
            at = sent(3 * hour),
            j = json("'{\"intent\":\"interested\"}'")
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, {at}, 'won', '{{}}' FROM deliveries WHERE state = 'sent' AND {won}",
            at = sent(4 * hour)
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, {at}, 'suppressed', {j} FROM deliveries WHERE state = 'sent' AND {unsubscribed}",
            at = sent(4 * hour),
            j = json("'{\"reason\":\"unsubscribed\"}'")
        ),
        format!(
            "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT l.email, 'unsubscribed', '{{}}', {at}
             FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.state = 'sent' AND d.{unsubscribed}",
            at = sent(4 * hour).replace("lead_id", "d.lead_id")
        ),
    ];
    // Won and unsubscribed first: the re-warmed that were not won stay in the sales queue.
    statements.extend(stop(won, "won", &sent(4 * hour)));
    statements.extend(stop(unsubscribed, "suppressed", &sent(4 * hour)));
    statements.extend(stop(rewarmed, "rewarmed", &sent(3 * hour)));
    statements.push("UPDATE leads SET tags = '[\"vip\"]' WHERE id % 10 = 5".into());
    statements
}

/// The configuration of `support/million.rs` with the console on.
fn config(database_url: &str) -> Settings {
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let toml = million::config(database_url).replace(
        "templates_dir = \"templates\"",
        &format!("templates_dir = \"{templates}\""),
    ) + "[console]\nenabled = true\n";
    Settings::from_toml(&toml, "console-bench.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The reference on connection `$conn`: an indexed count, its best of three.
macro_rules! indexed_count {
    ($conn:expr) => {{
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let _: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE state = 'nurturing'")
                .fetch_one(&mut $conn)
                .await
                .expect("count");
            best = best.min(started.elapsed());
        }
        best
    }};
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Serves the console over `store` and times every page next to the references.
async fn measure<S: Store>(backend: &str, store: S, url: &str, indexed_count: Duration, lead: i64) {
    let settings = config(url);
    let loaded = Loaded::with_store(settings, &store).await.expect("load");
    let session = {
        store
            .put_console_user(ADMIN, "admin", "bench", now())
            .await
            .expect("an admin");
        rewarm::console::open_session(&store, ADMIN, Duration::from_secs(3600), now())
            .await
            .expect("a session")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let state = HttpState {
        store: store.clone(),
        keys: loaded.keys.clone(),
        current: Current::new(loaded),
        api_token: None,
        clock: Clock::Fixed(now()),
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(rewarm::http::serve(listener, state, stop.clone()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let cookie = format!("rewarm_console={session}");
    let fetch = |path: &str| {
        let request = client
            .get(format!("{base}{path}"))
            .header(reqwest::header::COOKIE, cookie.clone());
        let path = path.to_string();
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("GET");
            let status = response.status();
            let body = response.text().await.expect("a body");
            assert_eq!(status, 200, "{path}: {body}");
            (started.elapsed(), body)
        }
    };
    // The overview's figures and forecast are computed in the background: time the pages
    // once they are there (what every visitor but the very first sees), and say how long
    // computing them took.
    let started = Instant::now();
    loop {
        let (_, body) = fetch("/console/").await;
        if body.contains("id=\"funnel-campaign\"") && body.contains("id=\"forecast-30\"") {
            let took = body
                .split("computed in ")
                .nth(1)
                .and_then(|rest| rest.split(" ms").next())
                .unwrap_or("?");
            println!(
                "{backend}: overview figures ready after {:.1} s (the report's figures computed in {took} ms, in the background); {}",
                started.elapsed().as_secs_f64(),
                million::load()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the overview's figures never came"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health = median(&mut timed(&fetch, "/healthz").await);
    println!(
        "\n| {backend} | median | slowest of {RUNS} | goal {} ms | median ÷ indexed count |",
        BUDGET.as_millis()
    );
    println!("|---|---|---|---|---|");
    println!(
        "| reference: `SELECT count(*) FROM leads WHERE state = 'nurturing'` (best of 3) | {} | | | 1 |",
        ms(indexed_count)
    );
    println!("| reference: GET /healthz | {} | | | |", ms(health));
    for page in pages() {
        let path = page.replace("{lead}", &lead.to_string());
        let mut times = timed(&fetch, &path).await;
        let (median, slowest) = (median(&mut times), times[times.len() - 1]);
        let verdict = if slowest <= BUDGET { "ok" } else { "OVER" };
        println!(
            "| GET {path} | {} | {} | {verdict} | {:.1} |",
            ms(median),
            ms(slowest),
            median.as_secs_f64() / indexed_count.as_secs_f64().max(1e-6)
        );
    }
    println!("\n{backend}: {} at the end", million::load());
    stop.cancel();
    let _ = server.await;
}

/// One warm-up, then [`RUNS`] timed fetches.
async fn timed<F, Fut>(fetch: &F, path: &str) -> Vec<Duration>
where
    F: Fn(&str) -> Fut,
    Fut: std::future::Future<Output = (Duration, String)>,
{
    fetch(path).await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(fetch(path).await.0);
    }
    times
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The pages to time: [`PAGES`], or those of `REWARM_BENCH_PAGES`.
fn pages() -> Vec<String> {
    match std::env::var("REWARM_BENCH_PAGES") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|p| p.trim().to_string()).collect()
        }
        _ => PAGES.iter().map(|p| p.to_string()).collect(),
    }
}

/// A re-warmed lead (one with a full timeline), for `{lead}` in a path.
const A_LEAD: &str = "SELECT max(id) FROM leads WHERE state = 'rewarmed'";

async fn sqlite(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, store) = million::sqlite(dir.path(), &CONSOLE, n).await;
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let indexed = indexed_count!(conn);
    let lead: Option<i64> = sqlx::query_scalar(A_LEAD)
        .fetch_one(&mut conn)
        .await
        .expect("a lead");
    let _ = conn.close().await;
    measure("SQLite", store, &url, indexed, lead.unwrap_or(1)).await;
}

async fn postgres(admin_url: &str, n: usize) {
    {
        let (url, store) = million::postgres(admin_url, &CONSOLE, n).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let indexed = indexed_count!(conn);
        let lead: Option<i64> = sqlx::query_scalar(A_LEAD)
            .fetch_one(&mut conn)
            .await
            .expect("a lead");
        let _ = conn.close().await;
        measure("PostgreSQL", store, &url, indexed, lead.unwrap_or(1)).await;
    }
    million::drop_postgres(admin_url, &CONSOLE, n).await;
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let n = million::leads();
    println!(
        "\n{n} leads, the console at {} ({}; {} at the start)\n",
        now().format("%Y-%m-%d %H:%M UTC"),
        million::profile(),
        million::load()
    );
    runtime.block_on(sqlite(n));
    if let Some(url) = million::postgres_admin_url() {
        runtime.block_on(postgres(&url, n));
    }
}
