//! The forecast's pending deliveries when its window holds many of them (SQLite): the leads
//! that can be sent to are read once, in id order, and each pending delivery is matched
//! with its lead in memory, instead of a look-up of its lead per delivery.
//!
//! In claim order the deliveries meet their leads all over the `leads` table, so each
//! look-up read a page of its own: with 699,062 first emails due among a million leads, one
//! `pread` per delivery (746,316 in all, 1.2 s of the forecast's 2.7 s in the kernel). Read
//! in id order, the leads come page after page (0.4 s for the 699,062), and the deliveries
//! alone, in claim order, 0.4 s more. Both are read inside one read transaction, so they
//! are of the same moment.
//!
//! [`scan_pays`] decides: when the window holds at least a quarter as many pending
//! deliveries as there are leads in `nurturing`; with fewer (a forecast at the import date,
//! the first emails months away), reading every lead would cost more than the look-ups.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use sqlx::Connection as _;
use sqlx::SqliteConnection;

use super::*;
use crate::store::forecast::ForecastDelivery;

/// Leads a chunk of the scan holds (~60 bytes each as JSON).
pub(super) const LEAD_CHUNK: i64 = 5_000;

/// A chunk of the leads the forecast can send to: the next `$2` leads in `nurturing` after
/// id `$1`, in id order (`leads_state`), as one JSON array of rows (each `[id, email,
/// timezone, country]`, the address empty unless `$3`), how many there are and the last
/// one's id.
macro_rules! lead_chunk {
    ($suppressed:expr) => {
        concat!(
            "SELECT json_group_array(json_array(id, CASE WHEN $3 THEN CAST(email AS TEXT) ELSE '' END, CAST(timezone AS TEXT),
                        CAST(country AS TEXT))), count(*), max(id)
             FROM (SELECT l.id, l.email, l.timezone, l.fields ->> 'country' AS country
                   FROM leads l WHERE l.state = 'nurturing' AND l.id > $1 ",
            $suppressed,
            " ORDER BY l.id LIMIT $2)"
        )
    };
}

/// With the suppression list: leads whose address or domain is on it are left out.
const LEAD_CHUNK_LISTED: &str = lead_chunk!(at_domain!(
    "AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
    "l.email",
    "))"
));
/// With nothing on the suppression list: no probe per lead.
const LEAD_CHUNK_UNLISTED: &str = lead_chunk!("");

/// A chunk of the pending deliveries themselves, without their leads: the next `$4` due
/// before `$1` after (`$2` due time, `$3` id) in claim order, read as the look-up's chunks
/// are (see `forecast.rs`), each row `[id, lead_id, campaign, step, template, due_at]`.
macro_rules! delivery_chunk {
    () => {
        concat!(
            "SELECT json_group_array(json_array(id, lead_id, CAST(campaign AS TEXT), CAST(step AS INTEGER),
                        CAST(template AS TEXT), CAST(due_at AS INTEGER))), count(*)
             FROM (",
            delivery_chunk!(@arm "d.due_at = $2 AND d.id > $3"),
            " UNION ALL ",
            delivery_chunk!(@arm "d.due_at > $2"),
            " ORDER BY 6, 1 LIMIT $4)"
        )
    };
    (@arm $range:literal) => {
        concat!(
            "SELECT d.id, d.lead_id, d.campaign, d.step, d.template, d.due_at
             FROM deliveries d INDEXED BY deliveries_pending
             WHERE d.state IN ('scheduled', 'retry_wait') AND ",
            $range,
            " AND d.due_at < $1"
        )
    };
}
const DELIVERY_CHUNK: &str = delivery_chunk!();

/// How many leads are in `nurturing` (the counters of migration 0018).
const NURTURING: &str = "SELECT coalesce(sum(n), 0) FROM state_counts
     WHERE part = 'leads' AND state = 'nurturing' AND campaign = ''";

/// How many deliveries are pending before `$1`, counted up to `$2`.
const PENDING_UP_TO: &str =
    "SELECT count(*) FROM (SELECT 1 FROM deliveries INDEXED BY deliveries_pending
     WHERE state IN ('scheduled', 'retry_wait') AND due_at < $1 LIMIT $2)";

/// Whether the forecast's window up to `until` holds at least a quarter as many pending
/// deliveries as there are leads in `nurturing`: then reading those leads once costs less
/// than a look-up of its lead per delivery (~0.6 µs a lead read against ~2.5 µs a look-up,
/// which reads a page of its own). Counted up to that quarter, through `deliveries_pending`
/// alone.
pub(super) async fn scan_pays(pool: &SqlitePool, until: DateTime<Utc>) -> Result<bool, StoreError> {
    let nurturing: i64 = sqlx::query_scalar(NURTURING).fetch_one(pool).await?;
    let quarter = (nurturing / 4).max(1);
    let pending: i64 = sqlx::query_scalar(PENDING_UP_TO)
        .bind(Time(until))
        .bind(quarter)
        .fetch_one(pool)
        .await?;
    Ok(pending >= quarter)
}

/// Strings met many times (zones, countries), each kept once; 0 is none.
#[derive(Default)]
struct Interned {
    by_name: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interned {
    fn key(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else { return 0 };
        if let Some(&key) = self.by_name.get(name) {
            return key;
        }
        self.names.push(name.to_string());
        let key = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.by_name.insert(name.to_string(), key);
        key
    }

    fn name(&self, key: u32) -> Option<String> {
        let i = usize::try_from(key).ok()?.checked_sub(1)?;
        self.names.get(i).cloned()
    }
}

/// Where a lead's cells are: its address in [`Sendable::emails`] (empty when the forecast
/// needs no addresses), its zone and country as one interned pair ([`Sendable::places`]).
#[derive(Clone, Copy)]
struct Entry {
    start: u64,
    len: u32,
    place: u32,
}

/// No lead with this id (a gap in [`Slots::Dense`]).
const ABSENT: Entry = Entry {
    start: 0,
    len: u32::MAX,
    place: 0,
};

/// The leads' entries by id: one slot per id from the first one's while the ids are close
/// together (ids only grow and no lead row is deleted, so those in `nurturing` are most of
/// their range), else in a hash map. One memory read finds a lead either way; a search by
/// halves over 699,062 ids took a quarter of the forecast's time, most of it cache misses.
enum Slots {
    Dense { first: i64, slots: Vec<Entry> },
    Sparse(HashMap<i64, Entry>),
}

/// Gaps a dense index may hold: at most as many as its leads, plus this.
const DENSE_SLACK: usize = 4_096;

/// The leads the forecast can send to, by id, with their addresses in one shared text.
struct Sendable {
    slots: Slots,
    leads: usize,
    last_id: Option<i64>,
    addresses: bool,
    emails: String,
    zone_names: Interned,
    country_names: Interned,
    /// (zone, country) keys by place.
    places: Vec<(u32, u32)>,
    place_keys: HashMap<(u32, u32), u32>,
}

impl Sendable {
    fn with_capacity(leads: usize, addresses: bool) -> Self {
        Self {
            slots: Slots::Dense {
                first: 0,
                slots: Vec::with_capacity(leads),
            },
            leads: 0,
            last_id: None,
            addresses,
            emails: String::new(),
            zone_names: Interned::default(),
            country_names: Interned::default(),
            places: Vec::new(),
            place_keys: HashMap::new(),
        }
    }

    fn place(&mut self, zone: Option<&str>, country: Option<&str>) -> u32 {
        let key = (self.zone_names.key(zone), self.country_names.key(country));
        if let Some(&place) = self.place_keys.get(&key) {
            return place;
        }
        let place = u32::try_from(self.places.len()).unwrap_or(u32::MAX);
        self.places.push(key);
        self.place_keys.insert(key, place);
        place
    }

    /// Adds a lead; ids come in ascending order (one that does not turns the slots into a
    /// hash map, where a lead read twice keeps its last cells).
    fn push(&mut self, lead: LeadCells<'_>) {
        let email = if self.addresses { &lead.1[..] } else { "" };
        let entry = Entry {
            start: self.emails.len() as u64,
            len: u32::try_from(email.len()).unwrap_or(u32::MAX - 1),
            place: self.place(lead.2.as_deref(), lead.3.as_deref()),
        };
        self.emails.push_str(email);
        let id = lead.0;
        let first_lead = self.last_id.is_none();
        self.last_id = Some(id);
        self.leads += 1;
        if let Slots::Dense { first, slots } = &mut self.slots {
            if first_lead {
                *first = id;
            }
            let at = id
                .checked_sub(*first)
                .and_then(|at| usize::try_from(at).ok());
            match at {
                Some(at) if at >= slots.len() && at < self.leads * 2 + DENSE_SLACK => {
                    slots.resize(at, ABSENT);
                    slots.push(entry);
                    return;
                }
                _ => {
                    let first = *first;
                    let dense = std::mem::take(slots);
                    let sparse = (first..)
                        .zip(dense)
                        .filter(|(_, e)| e.len != u32::MAX)
                        .collect();
                    self.slots = Slots::Sparse(sparse);
                }
            }
        }
        if let Slots::Sparse(map) = &mut self.slots {
            map.insert(id, entry);
        }
    }

    fn entry(&self, id: i64) -> Option<Entry> {
        let entry = match &self.slots {
            Slots::Dense { first, slots } => {
                let at = usize::try_from(id.checked_sub(*first)?).ok()?;
                *slots.get(at)?
            }
            Slots::Sparse(map) => *map.get(&id)?,
        };
        (entry.len != u32::MAX).then_some(entry)
    }

    /// The delivery with its lead's address, zone and country; `None` if its lead is not one
    /// the forecast can send to.
    fn join(&self, d: DeliveryCells) -> Result<Option<ForecastDelivery>, StoreError> {
        let Some(lead) = self.entry(d.1) else {
            return Ok(None);
        };
        let due_at = DateTime::from_timestamp_millis(d.5).ok_or_else(|| StoreError::Corrupt {
            table: "deliveries",
            id: d.0,
            reason: format!("due time {} out of range", d.5),
        })?;
        let start = usize::try_from(lead.start).unwrap_or(usize::MAX);
        let email = start
            .checked_add(lead.len as usize)
            .and_then(|end| self.emails.get(start..end))
            .unwrap_or_default();
        let (zone, country) = self
            .places
            .get(lead.place as usize)
            .copied()
            .unwrap_or_default();
        Ok(Some(ForecastDelivery {
            id: d.0,
            lead_id: d.1,
            campaign: d.2,
            step: u32::try_from(d.3).unwrap_or(0),
            template: d.4,
            due_at,
            email: email.to_string(),
            timezone: self.zone_names.name(zone),
            country: self.country_names.name(country),
        }))
    }
}

/// One row of `lead_chunk!`: id, address, zone, country.
#[derive(Deserialize)]
struct LeadCells<'a>(
    i64,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
);

/// One row of `delivery_chunk!`: id, lead id, campaign, step, template, due time (ms).
#[derive(Deserialize)]
struct DeliveryCells(i64, i64, String, i64, String, i64);

fn unreadable(table: &'static str, after: i64, n: i64, e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        table,
        id: after.max(0),
        reason: format!("the {n} rows after this one could not be read: {e}"),
    }
}

/// Every lead the forecast can send to, read in chunks of `size` on `conn` (SQLite reads
/// the next chunk while the last one is stored).
async fn read_sendable(
    conn: &mut SqliteConnection,
    sql: &'static str,
    (size, expected): (i64, usize),
    addresses: bool,
) -> Result<Sendable, StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(String, i64), StoreError>>(1);
    let reading = async move {
        let mut after = i64::MIN;
        loop {
            let chunk: Result<(String, i64, Option<i64>), StoreError> = sqlx::query_as(sql)
                .bind(after)
                .bind(size)
                .bind(addresses)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::from);
            let next = match &chunk {
                Ok((_, n, last)) if *n == size => *last,
                _ => None,
            };
            if tx.send(chunk.map(|(json, n, _)| (json, n))).await.is_err() {
                return;
            }
            match next {
                Some(id) => after = id,
                None => return,
            }
        }
    };
    let storing = async {
        let mut leads = Sendable::with_capacity(expected, addresses);
        while let Some(chunk) = rx.recv().await {
            let (json, n) = chunk?;
            let mut rows: Vec<LeadCells<'_>> = serde_json::from_str(&json)
                .map_err(|e| unreadable("leads", leads.last_id.unwrap_or(0), n, &e))?;
            // SQLite aggregates in the order its subquery gives; the slots take ids in order
            // (a chunk already in order is sorted in one pass).
            rows.sort_by_key(|r| r.0);
            if leads
                .last_id
                .is_some_and(|last| rows.first().is_some_and(|r| r.0 <= last))
            {
                return Err(StoreError::Corrupt {
                    table: "leads",
                    id: rows[0].0,
                    reason: "read twice by the forecast's scan".into(),
                });
            }
            for row in rows {
                leads.push(row);
            }
        }
        Ok(leads)
    };
    let ((), leads) = tokio::join!(reading, storing);
    leads
}

/// Every pending delivery due before `until`, in chunks of `size`, handed with its lead to
/// `each` in claim order; those whose lead is not in `leads` are skipped.
async fn read_pending<F: FnMut(ForecastDelivery) + Send>(
    conn: &mut SqliteConnection,
    leads: &Sendable,
    (until, size): (DateTime<Utc>, i64),
    mut each: F,
) -> Result<(), StoreError> {
    type Chunk = Result<Vec<DeliveryCells>, StoreError>;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(1);
    let reading = async move {
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let query = sqlx::query_as(DELIVERY_CHUNK)
                .bind(Time(until))
                .bind(after.0)
                .bind(after.1)
                .bind(size);
            let chunk = query.fetch_one(&mut *conn).await.map_err(StoreError::from);
            let chunk = chunk.and_then(|(json, n): (String, i64)| {
                let mut rows: Vec<DeliveryCells> = serde_json::from_str(&json)
                    .map_err(|e| unreadable("deliveries", after.1, n, &e))?;
                rows.sort_by_key(|d| (d.5, d.0));
                Ok(rows)
            });
            let next = match &chunk {
                Ok(rows) if i64::try_from(rows.len()) == Ok(size) => {
                    rows.last().map(|d| (d.5, d.0))
                }
                _ => None,
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
            match next {
                Some(key) => after = key,
                None => return,
            }
        }
    };
    let simulating = async {
        while let Some(chunk) = rx.recv().await {
            for d in chunk? {
                if let Some(d) = leads.join(d)? {
                    each(d);
                }
            }
        }
        Ok(())
    };
    let ((), done) = tokio::join!(reading, simulating);
    done
}

impl SqliteStore {
    /// `pending_before` by a scan of the leads: the leads in `nurturing` (not suppressed) in
    /// chunks of `lead_size`, then the pending deliveries alone in chunks of `size`, both in
    /// one read transaction. The same deliveries, in the same order, as
    /// [`SqliteStore::pending_before_in_chunks`].
    #[doc(hidden)]
    pub async fn pending_before_scanning<F: FnMut(ForecastDelivery) + Send>(
        &self,
        until: DateTime<Utc>,
        (lead_size, size): (i64, i64),
        addresses: bool,
        each: F,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let listed: bool = sqlx::query_scalar(crate::store::shared::ANY_LISTED)
            .fetch_one(&mut *tx)
            .await?;
        let sql = if listed {
            LEAD_CHUNK_LISTED
        } else {
            LEAD_CHUNK_UNLISTED
        };
        // Room for the leads the counters expect (bounded, should they be wrong).
        let nurturing: i64 = sqlx::query_scalar(NURTURING).fetch_one(&mut *tx).await?;
        let expected = usize::try_from(nurturing).unwrap_or(0).min(1 << 24);
        let leads = read_sendable(&mut tx, sql, (lead_size.max(1), expected), addresses).await?;
        read_pending(&mut tx, &leads, (until, size.max(1)), each).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the forecast up to `until` reads the leads by a scan ([`scan_pays`]).
    #[doc(hidden)]
    pub async fn forecast_scans(&self, until: DateTime<Utc>) -> Result<bool, StoreError> {
        scan_pays(&self.pool, until).await
    }

    /// The plans of the scan's two chunks, one line per step: the leads through
    /// `leads_state` from the last chunk's id, the deliveries through `deliveries_pending`;
    /// neither scans its table or sorts.
    #[doc(hidden)]
    pub async fn forecast_scan_plans(&self) -> Result<Vec<String>, StoreError> {
        let mut lines = Vec::new();
        for (sql, binds) in [(LEAD_CHUNK_LISTED, 3), (DELIVERY_CHUNK, 4)] {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(sql));
            for _ in 0..binds {
                query = query.bind(1_i64);
            }
            let rows = query.fetch_all(&self.pool).await?;
            lines.extend(rows.into_iter().map(|(_, _, _, detail)| detail));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(id: i64, zone: Option<&str>, country: Option<&str>) -> LeadCells<'static> {
        LeadCells(
            id,
            Cow::Owned(format!("lead{id}@x.example")),
            zone.map(|z| Cow::Owned(z.to_string())),
            country.map(|c| Cow::Owned(c.to_string())),
        )
    }

    fn found(leads: &Sendable, lead_id: i64) -> Option<(String, Option<String>, Option<String>)> {
        let d = DeliveryCells(
            lead_id.wrapping_mul(10),
            lead_id,
            "c".into(),
            1,
            "t".into(),
            0,
        );
        let d = leads.join(d).expect("a due time in range")?;
        assert_eq!(
            (d.id, d.lead_id, d.step),
            (lead_id.wrapping_mul(10), lead_id, 1)
        );
        Some((d.email, d.timezone, d.country))
    }

    /// Leads by id, close together (one slot per id) or far apart (a hash map from the
    /// first id that would leave too many gaps): each one is found with its own cells, with
    /// or without its address, and no other id is.
    #[test]
    fn each_lead_is_found_by_its_id_and_no_other_id_is() {
        let zones = [Some("Europe/Berlin"), None, Some("Asia/Tokyo")];
        let countries = [Some("DE"), Some("JP"), None, Some("DE")];
        let far = 9 + 3 * 2 + DENSE_SLACK as i64 + 10;
        for (ids, dense) in [
            (vec![5, 6, 9, 12, 13], true),
            (vec![1, 2, 3 + DENSE_SLACK as i64], true),
            (vec![5, 6, 9, far, far + 1, far * 3], false),
        ] {
            for addresses in [true, false] {
                let mut leads = Sendable::with_capacity(2, addresses);
                for (k, &id) in ids.iter().enumerate() {
                    leads.push(lead(id, zones[k % 3], countries[k % 4]));
                }
                assert_eq!(matches!(leads.slots, Slots::Dense { .. }), dense, "{ids:?}");
                for (k, &id) in ids.iter().enumerate() {
                    let email = if addresses {
                        format!("lead{id}@x.example")
                    } else {
                        String::new()
                    };
                    let cells = (
                        email,
                        zones[k % 3].map(str::to_string),
                        countries[k % 4].map(str::to_string),
                    );
                    assert_eq!(found(&leads, id), Some(cells), "lead {id} of {ids:?}");
                }
                for id in [
                    i64::MIN,
                    -1,
                    0,
                    4,
                    7,
                    8,
                    10,
                    14,
                    far - 1,
                    far + 2,
                    far * 3 + 1,
                    i64::MAX,
                ] {
                    if !ids.contains(&id) {
                        assert_eq!(found(&leads, id), None, "lead {id} of {ids:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_due_time_out_of_range_is_an_error_not_a_panic() {
        let mut leads = Sendable::with_capacity(1, true);
        leads.push(lead(1, None, None));
        let d = DeliveryCells(7, 1, "c".into(), 0, "t".into(), i64::MAX);
        assert!(matches!(
            leads.join(d),
            Err(StoreError::Corrupt { id: 7, .. })
        ));
    }
}
