//! `GET /console/`: the overview (marketing and admin; a sales user is sent to their
//! queue). The funnel per campaign and per segment, emails per day for the last 30 days
//! next to the forecast of the next 30, re-warms by months since the loss, the last 30
//! days' complaint, bounce and unsubscribe rates against the bulk senders' limits, and the
//! transport's state. The costly figures come from the background cache with their "as of"
//! time (`figures`, `cache`); the transport state is read per request.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::chart::{self, Bar};
use super::figures::{self, Figures};
use super::layout::{self, see_other};
use super::{Ctx, Permission, Viewer};
use crate::domain::report::{GroupReport, Report};
use crate::outbound::pause::{HEALTH_KEY, TransportHealth};
use crate::store::Store;

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("overview.html", include_str!("templates/overview.html"))];

/// How long the very first request waits for figures never computed yet.
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(1);

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new().route("/console/", get(page::<S>))
}

/// One funnel row as the template shows it.
#[derive(Debug, Serialize)]
struct FunnelRow {
    group: String,
    enrolled: i64,
    emailed: i64,
    replied: i64,
    rewarmed: i64,
    won: i64,
    /// Re-warmed per enrolled, in per cent.
    rewarm_rate: f64,
}

impl FunnelRow {
    fn of(g: &GroupReport) -> FunnelRow {
        let f = &g.funnel;
        FunnelRow {
            group: g.group.clone(),
            enrolled: f.enrolled,
            emailed: f.emailed,
            replied: f.replied,
            rewarmed: f.rewarmed,
            won: f.won,
            rewarm_rate: percent(f.rewarmed, f.enrolled),
        }
    }
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

fn rows(report: &Report) -> Vec<FunnelRow> {
    report
        .groups
        .iter()
        .chain(std::iter::once(&report.total))
        .map(FunnelRow::of)
        .collect()
}

async fn page<S: Store>(State(ctx): State<Ctx<S>>, viewer: Viewer) -> Response {
    if !viewer.can(Permission::SeeAll) {
        return see_other("/console/queue");
    }
    let now = ctx.now();
    let store = ctx.store().clone();
    let figures = ctx
        .figures
        .get(FIRST_WAIT, move || async move {
            figures::figures(&store, now)
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "The console's overview figures could not be computed"))
                .ok()
        })
        .await;
    let (store, loaded) = (ctx.store().clone(), ctx.settings());
    let forecast = ctx
        .forecast
        .get(FIRST_WAIT, move || async move {
            figures::forecast(&store, &loaded.settings, now)
                .await
                .inspect_err(
                    |e| tracing::warn!(error = %e, "The console's forecast could not be computed"),
                )
                .ok()
        })
        .await;
    let transport: Option<TransportHealth> = match ctx.store().kv_get(HEALTH_KEY).await {
        Ok(value) => value.and_then(|v| serde_json::from_str(&v).ok()),
        Err(e) => return layout::store_failure("console overview", &e),
    };
    let mut context = layout::page(&viewer, "Overview", "overview");
    context.insert("transport", &transport);
    if let Some(f) = &figures {
        insert_figures(&mut context, &f.value);
        context.insert(
            "figures_as_of",
            &f.as_of.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
        context.insert("figures_took_ms", &(f.took.as_millis() as u64));
    }
    let mut bars: Vec<Bar> = figures
        .as_ref()
        .map(|f| {
            f.value
                .sent_per_day
                .iter()
                .map(|(day, n)| Bar {
                    label: day.format("%m-%d").to_string(),
                    value: *n as f64,
                    forecast: false,
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(f) = &forecast {
        bars.extend(f.value.iter().map(|(day, n)| Bar {
            label: day.format("%m-%d").to_string(),
            value: *n as f64,
            forecast: true,
        }));
        context.insert(
            "forecast_as_of",
            &f.as_of.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
        context.insert(
            "forecast_total",
            &f.value.iter().map(|(_, n)| n).sum::<i64>(),
        );
    }
    if !bars.is_empty() {
        context.insert(
            "per_day_chart",
            &chart::bars("Emails per day: the last 30 days, then the forecast", &bars),
        );
    }
    layout::render("overview.html", &context)
}

/// The funnels, the re-warms by months since the loss and the rates.
fn insert_figures(context: &mut tera::Context, f: &Figures) {
    context.insert("by_campaign", &rows(&f.by_campaign));
    context.insert("by_segment", &rows(&f.by_segment));
    context.insert(
        "sent_30",
        &f.sent_per_day.iter().map(|(_, n)| n).sum::<i64>(),
    );
    context.insert("rates", &figures::rates(f));
    let loss = &f.by_campaign.total.loss_to_rewarm;
    context.insert("rewarmed_with_loss", &loss.leads);
    context.insert("median_months", &loss.median_months());
    let six_or_more: i64 = loss.by_months.range(6..).map(|(_, n)| n).sum();
    context.insert("six_or_more", &six_or_more);
    context.insert("six_or_more_share", &percent(six_or_more, loss.leads));
    if let Some(last) = loss.by_months.keys().next_back() {
        let bars: Vec<Bar> = (0..=*last)
            .map(|m| Bar {
                label: m.to_string(),
                value: loss.by_months.get(&m).copied().unwrap_or(0) as f64,
                forecast: false,
            })
            .collect();
        context.insert(
            "months_chart",
            &chart::bars("Re-warmed leads by whole months since the loss", &bars),
        );
    }
}
