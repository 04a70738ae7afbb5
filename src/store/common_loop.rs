//! The Rust both backends run word for word for closing the loop — undoing a suppression and
//! the report's aggregates — kept once as macros each backend's impl expands, like
//! `common.rs` (whose write steps, e.g. `self.write()`, they use).

/// `unsuppress_and_restore`, `leads_reached` and `broad_domain_entries` over the backend's
/// `RESTORE_RESUME`, `RESTORE_EVENTS`, `RESTORE_LEADS`, `RESTORE_COVERED`, `REACHED_ADDRESS`,
/// `REACHED_DOMAIN` and `BROAD_DOMAINS`.
macro_rules! common_restore_methods {
    () => {
        async fn unsuppress_and_restore(
            &self,
            address: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<Restored>, StoreError> {
            let mut tx = self.write().await?;
            let removed = sqlx::query(sql::UNSUPPRESS)
                .bind(address)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed == 0 {
                return Ok(None);
            }
            let still_suppressed: i64 = sqlx::query_scalar(RESTORE_COVERED)
                .bind(address)
                .fetch_one(&mut *tx)
                .await?;
            let mut counts = Vec::new();
            for statement in RESTORE_RESUME
                .into_iter()
                .chain([RESTORE_EVENTS, RESTORE_LEADS])
            {
                counts.push(
                    sqlx::query(statement)
                        .bind(address)
                        .bind(Time(now))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                );
            }
            tx.commit().await?;
            Ok(Some(Restored {
                restored: counts[3],
                resumed_deliveries: counts[0],
                still_suppressed,
            }))
        }

        async fn leads_reached(&self, address: &str) -> Result<i64, StoreError> {
            let statement = if address.starts_with('@') {
                REACHED_DOMAIN
            } else {
                REACHED_ADDRESS
            };
            Ok(sqlx::query_scalar(statement)
                .bind(address)
                .fetch_one(&self.pool)
                .await?)
        }

        async fn broad_domain_entries(&self, over: i64) -> Result<Vec<(String, i64)>, StoreError> {
            Ok(sqlx::query_as(BROAD_DOMAINS)
                .bind(over)
                .fetch_all(&self.pool)
                .await?)
        }
    };
}

/// The report's aggregates (the backend's `MONTH` and `DAYS` expressions): two statements,
/// each giving the groups and the totals (`(all)`; the replies' totals are sums), over the
/// stages the enrolments keep, or recomputed from the event log (`report --verify`); and the
/// rebuild of those stages (the backend's `REBUILD` statement).
macro_rules! common_report_methods {
    () => {
        async fn report_counts(&self, q: &ReportQuery) -> Result<ReportCounts, StoreError> {
            self.report_counts_of(q, false).await
        }

        async fn report_counts_from_events(
            &self,
            q: &ReportQuery,
        ) -> Result<ReportCounts, StoreError> {
            self.report_counts_of(q, true).await
        }

        async fn rebuild_report_stages(&self) -> Result<u64, StoreError> {
            let mut tx = self.pool.begin().await?;
            sqlx::query(REBUILD).execute(&mut *tx).await?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM enrolments")
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(n as u64)
        }
    };
}

/// The report's two statements (see `common_report_methods!`), from the kept stages or the
/// event log.
macro_rules! report_counts_of {
    () => {
        async fn report_counts_of(
            &self,
            q: &ReportQuery,
            from_events: bool,
        ) -> Result<ReportCounts, StoreError> {
            let since = Time(q.since.unwrap_or(DateTime::UNIX_EPOCH));
            let group = super::report_sql::report_group(q.by, MONTH);
            type Row = (String, String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
            let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(super::report_sql::report_sql(
                &group,
                DAYS,
                COHORT,
                from_events,
            )))
            .bind(since)
            .bind(Time(q.until))
            .fetch_all(&self.pool)
            .await?;
            let mut funnels = Vec::new();
            let mut days = Vec::new();
            for (part, g, d, a, b, c, e, f, h, i, j) in rows {
                if part == "funnel" {
                    funnels.push((g, [a, b, c, e, f, h, i, j]));
                } else {
                    days.push((g, d, a));
                }
            }
            let mut intents: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(
                super::report_sql::report_intents_sql(&group, from_events),
            ))
            .bind(since)
            .bind(Time(q.until))
            .fetch_all(&self.pool)
            .await?;
            let mut total: std::collections::BTreeMap<String, i64> = Default::default();
            for (_, intent, n) in &intents {
                *total.entry(intent.clone()).or_default() += n;
            }
            let all = crate::domain::report::ALL.to_string();
            intents.extend(
                total
                    .into_iter()
                    .map(|(intent, n)| (all.clone(), intent, n)),
            );
            funnels.sort();
            days.sort();
            intents.sort();
            Ok(ReportCounts {
                funnels,
                days,
                intents,
            })
        }
    };
}
