//! `[import]`: the CRM header map and the import quality policies.

use super::super::Problems;
use super::super::raw::RawImport;
use crate::ingest::checked::ImportSettings;
use crate::ingest::headers::ColumnMap;
use crate::ingest::quality::{OwnerRule, Policy};

pub(super) fn import(raw: RawImport, p: &mut Problems) -> ImportSettings {
    let columns = ColumnMap::new(&raw.columns).unwrap_or_else(|errors| {
        for e in errors {
            p.err("import.columns", e);
        }
        ColumnMap::default()
    });
    let mut policy = |key: &str, value: Option<String>| {
        value.map_or(Policy::default(), |v| {
            Policy::parse(&v).unwrap_or_else(|| {
                p.err(
                    key,
                    format!("`{v}` is not a policy (use one of: {})", Policy::NAMES),
                );
                Policy::default()
            })
        })
    };
    let role_addresses = policy("import.role_addresses", raw.role_addresses);
    let disposable_addresses = policy("import.disposable_addresses", raw.disposable_addresses);
    let owner_conflict = raw.owner_conflict.map_or(OwnerRule::default(), |v| {
        OwnerRule::parse(&v).unwrap_or_else(|| {
            p.err(
                "import.owner_conflict",
                format!("`{v}` is not a rule (use one of: {})", OwnerRule::NAMES),
            );
            OwnerRule::default()
        })
    });
    let mut disposable_domains = Vec::new();
    for d in raw.disposable_domains {
        let domain = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if domain.contains('.') && !domain.contains(char::is_whitespace) && !domain.contains('@') {
            disposable_domains.push(domain);
        } else {
            p.err(
                "import.disposable_domains",
                format!("`{d}` is not a domain (like burner.example)"),
            );
        }
    }
    ImportSettings {
        columns,
        role_addresses,
        disposable_addresses,
        disposable_domains,
        owner_conflict,
    }
}
