//! Dates for the tools, without a date library: printing epoch milliseconds the way Kafka's tools
//! do (in UTC) and reading the ISO-8601 times that `--to-datetime` takes.

/// Days since 1970-01-01 for a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// `yyyy-MM-dd HH:mm:ss:SSS` (Kafka's perf-test date format), in UTC.
pub fn format_ms(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}:{milli:03}")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Parses what kafka-consumer-groups --to-datetime accepts: `YYYY-MM-DDTHH:mm:SS.sss` with an
/// optional zone (`Z`, `+hh:mm`, `-hhmm`); without a zone the time is UTC.
pub fn parse_iso_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date-time of the form YYYY-MM-DDTHH:mm:SS.sss[Z|+hh:mm]");
    let (date, rest) = text.split_once('T').ok_or_else(bad)?;
    let mut date_parts = date.splitn(3, '-');
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
    let (y, mo, d) = (num(date_parts.next())?, num(date_parts.next())?, num(date_parts.next())?);
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':');
    let (h, mi) = (num(t.next())?, num(t.next())?);
    let s = match t.next() {
        Some(s) => num(Some(s))?,
        None => 0,
    };
    let millis: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let offset_min = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return Err(bad());
            }
            let hh: i64 = digits[..2].parse().map_err(|_| bad())?;
            let mm: i64 = digits[2..].parse().map_err(|_| bad())?;
            sign * (hh * 60 + mm)
        }
    };
    let local = days_from_civil(y, mo, d) * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + millis;
    Ok(local - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00:000");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14 22:13:20:123");
        assert_eq!(parse_iso_ms("2023-11-14T22:13:20.123").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_iso_ms("2023-11-14T22:13:20.123Z").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_iso_ms("2023-11-15T00:13:20.123+02:00").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_iso_ms("2023-11-14T20:13:20.123-0200").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_iso_ms("2024-02-29T00:00:00").unwrap(), 1_709_164_800_000);
        assert!(parse_iso_ms("yesterday").is_err());
        assert!(parse_iso_ms("2024-13-01T00:00:00").is_err());
    }
}
