//! The country of an IANA zone, for leads without a `country` field: tzdata's `zone.tab`
//! (plus the old names that link to its zones), compiled in from `data/calendar/zones.tsv`.
//! Zones not tied to a country (`UTC`, `Etc/GMT+5`) have none.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;

use super::Country;

const DATA: &str = include_str!("../../../data/calendar/zones.tsv");

static TABLE: LazyLock<HashMap<&'static str, Country>> = LazyLock::new(|| {
    DATA.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (zone, cc) = l.split_once('\t')?;
            Some((zone, Country::parse(cc)?))
        })
        .collect()
});

/// The country zone `tz` belongs to, if any.
pub fn country_of(tz: Tz) -> Option<Country> {
    TABLE.get(tz.name()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_map_to_their_country() {
        let cases = [
            (chrono_tz::America::New_York, Some("US")),
            (chrono_tz::America::Los_Angeles, Some("US")),
            (chrono_tz::US::Eastern, Some("US")),
            (chrono_tz::Asia::Tokyo, Some("JP")),
            (chrono_tz::Europe::Berlin, Some("DE")),
            (chrono_tz::Europe::London, Some("GB")),
            (chrono_tz::Australia::Sydney, Some("AU")),
            (chrono_tz::America::Toronto, Some("CA")),
            (Tz::UTC, None),
            (chrono_tz::Etc::GMTPlus5, None),
        ];
        for (tz, want) in cases {
            assert_eq!(country_of(tz), want.and_then(Country::parse), "{tz}");
        }
        assert!(TABLE.len() > 400);
    }
}
