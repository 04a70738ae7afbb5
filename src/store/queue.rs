//! The delivery queue's trait ([`QueueStore`]): what the enrolment pass, the send pass and
//! the repairs ask of a database. Each backend's answers: `sqlite/queue.rs`,
//! `postgres/queue.rs` (recording: their `record.rs`).

use std::future::Future;

use chrono::{DateTime, Utc};

use super::*;

/// The delivery queue: enrolments, claims, outcomes, leases and repairs.
pub trait QueueStore {
    /// Leads the enrolment pass reads and judges at a time: what it holds in memory
    /// (docs/performance.md).
    const ENROL_PAGE: usize;

    /// Enrolments the pass gathers, page after page, before it hands them to
    /// [`QueueStore::enrol`] (one transaction, written in due order): the more, the fewer
    /// stretches of the tables a send pass in due order jumps between (docs/performance.md).
    const ENROL_WRITE: usize;

    /// Enrolment writes a pass runs at once (each a transaction of its own leads), while it
    /// reads the next: 2 where two writers really write at once, 1 where there is one writer.
    const ENROL_LANES: usize;

    /// Batches that may send at once, each with its own waves (dispatch's `Lanes`): 2 where
    /// two writers really write at once, so one batch's wave is on the wire while the other
    /// records its own; 1 where there is one writer anyway (more lanes would only halve the
    /// waves, i.e. twice the commits).
    const WAVE_LANES: usize;

    /// Enrols leads (one transaction): enrolment row, first delivery, lead → nurturing,
    /// events. A lead already enrolled in that campaign is skipped. A `new` lead whose address
    /// or domain is on the suppression list is not enrolled: it becomes `suppressed` (event).
    /// Returns how many were enrolled.
    fn enrol(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Puts leads into a campaign again, or into a new one (a campaign's `then`, `leads
    /// recycle --campaign`), one transaction for the batch. A lead is entered only if its
    /// state is one of `from` (else skipped). Its waiting deliveries are cancelled and active
    /// enrolments stopped; its other enrolments (completed or stopped) become `continued` (a
    /// later recycle does not resume them); the
    /// (lead, campaign) enrolment is reused with the next `cycle` (a round: steps start at 0
    /// again, and no step goes out twice within one round) or created; step 0 is scheduled at
    /// `first_due`; event `enrolled` {campaign, segment, cycle, first_due, via, from}; the
    /// lead becomes `nurturing` (out-of-scope and pause columns cleared). A lead whose
    /// address or domain is listed becomes `suppressed` instead (event `suppressed`).
    /// Returns the ids of the leads entered.
    ///
    /// With `recycled: Some(reason)` (a person brought the lead back) a `recycled` event
    /// {reason, from, to, campaign, after} comes first, which also restarts the score.
    fn enter_campaign(
        &self,
        entries: &[NewEnrolment],
        from: &[LeadState],
        via: &str,
        recycled: Option<&str>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Leads `completed` whose enrolment in `campaign` is `completed` (not `continued`), by
    /// lead id, at most `limit`: (lead id, segment). The daemon moves them on to the
    /// campaign's `then`.
    fn completed_in(
        &self,
        campaign: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(i64, String)>, StoreError>> + Send;

    /// Claims up to `limit` deliveries due at `now` whose lead is still nurturing and whose
    /// address and domain are not on the suppression list (checked in the claiming statement
    /// itself), leasing them to `worker` until `lease_until`.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Records the outcomes of claimed deliveries (one transaction): delivery rows, events,
    /// next steps, finished enrolments and lead states. `Failed { suppress: true }` (a hard
    /// bounce) suppresses the lead, lists its address (`hard_bounce`, evidence {delivery_id,
    /// error}), ignores `next`, stops its other enrolments and cancels their waiting deliveries.
    fn record_outcomes(
        &self,
        outcomes: &[RecordedOutcome],
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims whose lease ended before `now`: those whose send had started (`started_at`
    /// set) become `unknown` (never resent; event `written_off` with the moment), those
    /// never started are due again (`scheduled`, the attempt not counted).
    fn expire_leases(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Expired, StoreError>> + Send;

    /// Marks claimed deliveries of `worker` as started (`started_at = now`) just before their
    /// SMTP transaction (or API call) begins, in one statement; returns the ids marked. A row
    /// no longer claimed by `worker`, or started at another moment, is left alone and must
    /// not be sent; one already marked at this very `now` by `worker` is returned again (the
    /// same wave marked twice because a reply was lost).
    fn mark_started(
        &self,
        ids: &[i64],
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// [`record_outcomes`](Self::record_outcomes) of one wave and
    /// [`mark_started`](Self::mark_started) of the next, in one transaction (one commit per
    /// wave: what dispatch does between two waves of a batch). Safe to run again after a lost
    /// reply, like each of its halves. Returns the ids marked started.
    fn record_and_start(
        &self,
        outcomes: &[RecordedOutcome],
        start: &[i64],
        worker: &str,
        now: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Every claim of `worker` that never started goes back to due at once (the worker
    /// restarted, or stopped before sending them); returns how many.
    fn release_unstarted(
        &self,
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Deliveries `unknown`, latest first, at most `limit`, with when they became so.
    fn unknown_deliveries(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<UnknownDelivery>, StoreError>> + Send;

    /// Active enrolments with no delivery scheduled, claimed or waiting for a retry.
    fn stalled_enrolments(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StalledEnrolment>, StoreError>> + Send;

    /// The active enrolments of `campaign` with nothing pending (whatever left them so).
    fn stalled_in(
        &self,
        campaign: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StalledEnrolment>, StoreError>> + Send;

    /// Schedules the next step of stalled enrolments, or completes those with none (`None`).
    fn resume_enrolments(
        &self,
        resumed: &[(StalledEnrolment, Option<NextStep>)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// After a pass enrolled many leads: brings the planner's statistics of the tables it
    /// changed up to date where the backend plans by them. PostgreSQL `ANALYZE`s leads,
    /// enrolments and deliveries: a claim planned on statistics from before (every lead `new`,
    /// no delivery — `db copy` of a database not enrolled yet, or autovacuum between import
    /// and enrolment) joined each due delivery with every `nurturing` lead, and a 100k claim
    /// ran for minutes. SQLite does nothing: its statements name their indexes. (After a
    /// copy, [`CopyStore::refresh_statistics`] does the same for every table.)
    fn refresh_enrolment_statistics(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deliveries scheduled or waiting for a retry, with their due time.
    fn pending_deliveries(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingDelivery>, StoreError>> + Send;

    /// Deliveries due at `now` and not sent yet (the queue depth `status` reports as
    /// `due_now`), from the counters and the shorter side of `now` in the pending index:
    /// `/metrics` asks on every scrape.
    fn due_now(&self, now: DateTime<Utc>) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The lead a delivery went to (for unsubscribe/click/reply tokens).
    fn delivery_target(
        &self,
        delivery_id: i64,
    ) -> impl Future<Output = Result<Option<DeliveryTarget>, StoreError>> + Send;

    /// The delivery an email provider took under `provider_id` (its `MessageID`,
    /// `X-Message-Id` or `id`, as stored on send), compared exactly.
    fn delivery_by_provider_id(
        &self,
        provider_id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryTarget>, StoreError>> + Send;
}
