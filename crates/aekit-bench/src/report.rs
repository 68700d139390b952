//! What every benchmark report starts with: the command that made it, the machine it ran on
//! and the date, so that a figure in `bench/results/` can be traced and repeated.

/// The CPU model and core count, for benchmark reports.
pub fn machine_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today_utc() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The header of a report: its title, the command line of this process, machine and date.
pub fn header(title: &str) -> String {
    let command: Vec<String> = std::env::args().collect();
    format!(
        "{title}\ncommand: {}\nmachine: {}\ndate: {} (UTC)\n",
        command.join(" "),
        machine_description(),
        today_utc()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates_of_known_days() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(20_454), "2026-01-01");
        assert_eq!(super::civil_date(11_016), "2000-02-29");
    }
}
