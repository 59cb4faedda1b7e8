//! Business hours: when a route or a target has humans to take a handoff.
//! A weekly schedule of opening windows in a named IANA time zone, with
//! holidays (closed all day) and exceptions (other windows on one date).
//! Times are civil times of the zone, so a schedule keeps meaning "8:00 to
//! 18:00" across daylight-saving changes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

/// How far ahead the next opening is looked for: a schedule closed for
/// longer (every day a holiday) has no next opening.
const LOOKAHEAD_DAYS: i32 = 370;

/// A named schedule as configured (`[[hours]]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    /// The name routes and targets use (`hours = "…"`).
    pub name: String,
    /// An IANA zone name such as `Europe/Madrid`.
    pub time_zone: String,
    /// Opening windows per weekday, `"08:00-18:00"` (`"24:00"` ends a day);
    /// a day with none is closed.
    #[serde(default)]
    pub monday: Vec<String>,
    #[serde(default)]
    pub tuesday: Vec<String>,
    #[serde(default)]
    pub wednesday: Vec<String>,
    #[serde(default)]
    pub thursday: Vec<String>,
    #[serde(default)]
    pub friday: Vec<String>,
    #[serde(default)]
    pub saturday: Vec<String>,
    #[serde(default)]
    pub sunday: Vec<String>,
    /// Dates closed all day, `"2026-12-25"`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Dates with windows of their own instead of their weekday's.
    #[serde(default)]
    pub exceptions: Vec<HoursException>,
}

/// One date's own windows (`[[hours.exceptions]]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HoursException {
    pub date: String,
    #[serde(default)]
    pub open: Vec<String>,
}

/// One opening window of a day; `closes` is `None` for the day's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    opens: Time,
    closes: Option<Time>,
}

/// Whether a schedule is open at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenNow {
    /// Open until `closes_at`; `None` when no schedule applies.
    Open { closes_at: Option<Timestamp> },
    /// Closed; `opens_at` is the next opening, if one comes within a year.
    Closed { opens_at: Option<Timestamp> },
}

impl OpenNow {
    pub fn is_open(&self) -> bool {
        matches!(self, OpenNow::Open { .. })
    }
}

/// A checked schedule, ready to answer whether it is open.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    name: String,
    zone_name: String,
    zone: TimeZone,
    /// Monday first.
    weekly: [Vec<Window>; 7],
    /// Holidays (no window) and exceptions.
    by_date: BTreeMap<Date, Vec<Window>>,
}

impl BusinessHours {
    /// Checks `config`; errors name the key under `key` that is wrong.
    pub fn new(config: &HoursConfig, key: &str) -> Result<Self, String> {
        let zone = TimeZone::get(&config.time_zone).map_err(|_| {
            format!(
                "{key}.time_zone: {:?} is not an IANA time zone name",
                config.time_zone
            )
        })?;
        let days = [
            ("monday", &config.monday),
            ("tuesday", &config.tuesday),
            ("wednesday", &config.wednesday),
            ("thursday", &config.thursday),
            ("friday", &config.friday),
            ("saturday", &config.saturday),
            ("sunday", &config.sunday),
        ];
        let mut weekly: [Vec<Window>; 7] = Default::default();
        for (day, (name, windows)) in weekly.iter_mut().zip(days) {
            *day = parse_windows(windows, &format!("{key}.{name}"))?;
        }
        let mut by_date = BTreeMap::new();
        for (i, holiday) in config.holidays.iter().enumerate() {
            let date = parse_date(holiday, &format!("{key}.holidays[{i}]"))?;
            by_date.insert(date, Vec::new());
        }
        for (i, exception) in config.exceptions.iter().enumerate() {
            let at = format!("{key}.exceptions[{i}]");
            let date = parse_date(&exception.date, &format!("{at}.date"))?;
            let windows = parse_windows(&exception.open, &format!("{at}.open"))?;
            if by_date.insert(date, windows).is_some() {
                return Err(format!(
                    "{at}.date: {date} is already a holiday or another exception"
                ));
            }
        }
        Ok(Self {
            name: config.name.clone(),
            zone_name: config.time_zone.clone(),
            zone,
            weekly,
            by_date,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> &str {
        &self.zone_name
    }

    /// Whether the schedule is open at `now`, and until or from when.
    pub fn at(&self, now: Timestamp) -> OpenNow {
        let today = now.to_zoned_datetime(self.zone.clone()).date();
        // Yesterday too: a window open until midnight is in the past day's
        // list, and a time-zone gap can shift a day's start.
        let mut date = today.yesterday().unwrap_or(today);
        for _ in 0..=LOOKAHEAD_DAYS {
            for window in self.windows_on(date) {
                let (Some(opens_at), Some(closes_at)) = (
                    self.instant(date, Some(window.opens)),
                    self.instant(date, window.closes),
                ) else {
                    continue;
                };
                if now < opens_at {
                    return OpenNow::Closed {
                        opens_at: Some(opens_at),
                    };
                }
                if now < closes_at {
                    return OpenNow::Open {
                        closes_at: Some(self.close_of_run(date, closes_at)),
                    };
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        OpenNow::Closed { opens_at: None }
    }

    /// The windows of `date`: its exception or holiday, else its weekday's.
    fn windows_on(&self, date: Date) -> &[Window] {
        self.by_date.get(&date).map_or_else(
            || &self.weekly[usize::from(date.weekday().to_monday_zero_offset().unsigned_abs())][..],
            Vec::as_slice,
        )
    }

    /// The instant `time` (or the day's end, for `None`) on `date` in the
    /// zone; a time skipped by a daylight-saving change is the instant
    /// after the gap.
    fn instant(&self, date: Date, time: Option<Time>) -> Option<Timestamp> {
        let civil = match time {
            Some(time) => date.to_datetime(time),
            None => date.tomorrow().ok()?.to_datetime(Time::midnight()),
        };
        civil
            .to_zoned_datetime(self.zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    /// When an open run that reaches `closes_at` on `date` truly closes: a
    /// window ending at midnight goes on into a next day opening at
    /// midnight (an overnight shift is written as two windows).
    fn close_of_run(&self, mut date: Date, mut closes_at: Timestamp) -> Timestamp {
        for _ in 0..LOOKAHEAD_DAYS {
            let ends_at_midnight = self
                .windows_on(date)
                .last()
                .is_some_and(|window| window.closes.is_none());
            let Ok(next) = date.tomorrow() else { break };
            let next_first = self.windows_on(next).first().copied();
            match next_first {
                Some(window) if ends_at_midnight && window.opens == Time::midnight() => {
                    match self.instant(next, window.closes) {
                        Some(later) => closes_at = later,
                        None => break,
                    }
                    date = next;
                }
                _ => break,
            }
        }
        closes_at
    }
}

/// Whether every one of `schedules` is open at `now` (always, for none):
/// open until the first of them closes, or closed until the first instant
/// all are open (looked for across a few of their openings).
pub fn all_open(schedules: &[&BusinessHours], now: Timestamp) -> OpenNow {
    let mut at = now;
    // Each round moves to the latest next opening of those closed; two
    // schedules that never overlap give up after this many rounds.
    for _ in 0..32 {
        let mut closes_at: Option<Timestamp> = None;
        let mut opens_at: Option<Timestamp> = None;
        for schedule in schedules {
            match schedule.at(at) {
                OpenNow::Open {
                    closes_at: Some(closes),
                } => closes_at = Some(closes_at.map_or(closes, |first| first.min(closes))),
                OpenNow::Open { closes_at: None } => {}
                OpenNow::Closed { opens_at: None } => return OpenNow::Closed { opens_at: None },
                OpenNow::Closed {
                    opens_at: Some(opens),
                } => opens_at = opens_at.max(Some(opens)),
            }
        }
        match opens_at {
            None if at == now => return OpenNow::Open { closes_at },
            None => return OpenNow::Closed { opens_at: Some(at) },
            Some(later) => at = later,
        }
    }
    OpenNow::Closed { opens_at: None }
}

fn parse_date(text: &str, key: &str) -> Result<Date, String> {
    text.parse()
        .map_err(|_| format!("{key}: {text:?} is not a date such as \"2026-12-25\""))
}

/// Parses `"HH:MM-HH:MM"` windows, in order and not overlapping.
fn parse_windows(texts: &[String], key: &str) -> Result<Vec<Window>, String> {
    let mut windows: Vec<Window> = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let bad = || format!("{key}: {text:?} is not a window such as \"08:00-18:00\"");
        let (opens, closes) = text.split_once('-').ok_or_else(bad)?;
        let opens = parse_time(opens.trim()).ok_or_else(bad)?;
        let closes = match closes.trim() {
            "24:00" => None,
            closes => Some(parse_time(closes).ok_or_else(bad)?),
        };
        if closes.is_some_and(|closes| closes <= opens) {
            return Err(format!(
                "{key}: {text:?} closes before it opens (write an overnight shift as two windows, the first ending at 24:00)"
            ));
        }
        if let Some(previous) = windows.last()
            && previous.closes.is_none_or(|closed| closed > opens)
        {
            return Err(format!(
                "{key}: {text:?} overlaps or comes before the window before it"
            ));
        }
        windows.push(Window { opens, closes });
    }
    Ok(windows)
}

fn parse_time(text: &str) -> Option<Time> {
    let (hour, minute) = text.split_once(':')?;
    if hour.len() != 2 || minute.len() != 2 {
        return None;
    }
    Time::new(hour.parse().ok()?, minute.parse().ok()?, 0, 0).ok()
}

/// Whole minutes from `now` to `later`, rounded up (for "about N minutes").
pub fn minutes_until(now: Timestamp, later: Timestamp) -> i64 {
    let seconds = later.as_second() - now.as_second();
    (seconds.max(0) + 59) / 60
}

#[cfg(test)]
mod tests;
