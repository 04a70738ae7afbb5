//! File descriptors: the daemon raises its own limit at start-up and keeps some for sending.
//!
//! Every SMTP connection, database connection, IMAP session and HTTP client is a file
//! descriptor, and the default soft limit (often 1,024) is easily reached by idle HTTP
//! clients — then SMTP connects fail with EMFILE. So at start-up [`raise_limit`] lifts the
//! soft `RLIMIT_NOFILE` to the hard limit (the systemd unit sets `LimitNOFILE=65536`), and
//! the HTTP side caps its connections at what is left after [`reserve`]: the transport's
//! connections, the database pool, the reply mailbox, and a margin for logs, files and
//! DNS.

use crate::config::{Settings, TransportSettings};

/// The soft and hard `RLIMIT_NOFILE` (None: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The current limit.
pub fn limit() -> Limit {
    let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Limit {
        soft: r.current,
        hard: r.maximum,
    }
}

/// Raises the soft limit to the hard one, if it is lower; logs what it did. Returns the
/// limit in force afterwards.
pub fn raise_limit() -> Limit {
    let before = limit();
    if before.soft == before.hard {
        tracing::info!(soft = ?before.soft, "File descriptor limit (RLIMIT_NOFILE)");
        return before;
    }
    let raised = rustix::process::Rlimit {
        current: before.hard,
        maximum: before.hard,
    };
    match rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
        Ok(()) => {
            let after = limit();
            tracing::info!(from = ?before.soft, to = ?after.soft, "Raised the file descriptor limit (RLIMIT_NOFILE) to its hard limit");
            after
        }
        Err(e) => {
            tracing::warn!(soft = ?before.soft, hard = ?before.hard, error = %e, "Could not raise the file descriptor limit; set LimitNOFILE in the systemd unit");
            before
        }
    }
}

/// How many descriptors are open now (Linux: entries of /proc/self/fd; 0 elsewhere).
pub fn open_now() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Descriptors kept for everything but HTTP clients: the transport's connections, the
/// database pool, the reply mailbox, and a margin of 64 (logs, template files, DNS, the
/// outbox).
pub fn reserve(settings: &Settings) -> u64 {
    let transport = match &settings.transport {
        TransportSettings::Smtp(s) => s.pool_size as u64,
        TransportSettings::Api(a) => a.concurrency.unwrap_or(16) as u64,
        TransportSettings::File { .. } => 4,
    };
    let database = 8;
    let mailbox = u64::from(settings.inbound.imap.is_some());
    transport * 2 + database + mailbox + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_the_limit() {
        let before = limit();
        let after = raise_limit();
        assert!(after.soft >= before.soft || after.soft.is_none());
        assert!(open_now() < after.soft.unwrap_or(u64::MAX));
    }
}
