use jiff::Timestamp;

use super::{BusinessHours, HoursConfig, HoursException, OpenNow, all_open, minutes_until};

/// Madrid's office: weekdays 08:00-14:00 and 15:00-18:00, Saturday
/// mornings, Christmas closed, Christmas Eve until 13:00.
fn madrid() -> HoursConfig {
    let split = vec!["08:00-14:00".to_owned(), "15:00-18:00".to_owned()];
    HoursConfig {
        name: "office".into(),
        time_zone: "Europe/Madrid".into(),
        monday: split.clone(),
        tuesday: split.clone(),
        wednesday: split.clone(),
        thursday: split.clone(),
        friday: split,
        saturday: vec!["09:00-13:00".into()],
        holidays: vec!["2026-12-25".into()],
        exceptions: vec![HoursException {
            date: "2026-12-24".into(),
            open: vec!["08:00-13:00".into()],
        }],
        ..HoursConfig::default()
    }
}

fn hours(config: &HoursConfig) -> BusinessHours {
    BusinessHours::new(config, "hours[0]").expect("valid hours")
}

fn at(instant: &str) -> Timestamp {
    instant.parse().expect("an RFC 3339 instant")
}

fn open_until(instant: &str) -> OpenNow {
    OpenNow::Open {
        closes_at: Some(at(instant)),
    }
}

fn closed_until(instant: &str) -> OpenNow {
    OpenNow::Closed {
        opens_at: Some(at(instant)),
    }
}

#[test]
fn a_weekday_is_open_in_its_windows_and_closed_between_them() {
    let office = hours(&madrid());
    // Thursday 3 December 2026; Madrid is UTC+1 in winter.
    assert_eq!(
        office.at(at("2026-12-03T09:30:00Z")),
        open_until("2026-12-03T13:00:00Z")
    );
    assert_eq!(
        office.at(at("2026-12-03T13:30:00Z")),
        closed_until("2026-12-03T14:00:00Z")
    );
    assert_eq!(
        office.at(at("2026-12-03T06:59:59Z")),
        closed_until("2026-12-03T07:00:00Z")
    );
}

#[test]
fn after_saturday_morning_the_next_opening_is_monday() {
    let office = hours(&madrid());
    assert_eq!(
        office.at(at("2026-12-05T12:00:00Z")),
        closed_until("2026-12-07T07:00:00Z")
    );
}

#[test]
fn holidays_close_all_day_and_exceptions_replace_the_weekday() {
    let office = hours(&madrid());
    // Thursday 24 December closes at 13:00, Friday 25 is a holiday.
    assert_eq!(
        office.at(at("2026-12-24T11:00:00Z")),
        open_until("2026-12-24T12:00:00Z")
    );
    assert_eq!(
        office.at(at("2026-12-24T12:00:00Z")),
        closed_until("2026-12-26T08:00:00Z")
    );
}

#[test]
fn windows_keep_their_civil_times_across_daylight_saving() {
    let office = hours(&madrid());
    // Monday 30 March 2026: Madrid is UTC+2 after the change of the 29th.
    assert_eq!(
        office.at(at("2026-03-30T05:00:00Z")),
        closed_until("2026-03-30T06:00:00Z")
    );
}

#[test]
fn a_day_ending_at_midnight_runs_on_into_a_day_opening_at_midnight() {
    let config = HoursConfig {
        name: "nights".into(),
        time_zone: "America/New_York".into(),
        friday: vec!["22:00-24:00".into()],
        saturday: vec!["00:00-06:00".into()],
        ..HoursConfig::default()
    };
    let nights = hours(&config);
    // Friday 4 December 2026, 23:00 in New York (UTC-5).
    assert_eq!(
        nights.at(at("2026-12-05T04:00:00Z")),
        open_until("2026-12-05T11:00:00Z")
    );
    // Saturday 01:00: yesterday's window list is behind, today's runs.
    assert_eq!(
        nights.at(at("2026-12-05T06:00:00Z")),
        open_until("2026-12-05T11:00:00Z")
    );
}

#[test]
fn a_schedule_never_open_has_no_next_opening() {
    let config = HoursConfig {
        name: "never".into(),
        time_zone: "UTC".into(),
        ..HoursConfig::default()
    };
    assert_eq!(
        hours(&config).at(at("2026-12-03T09:30:00Z")),
        OpenNow::Closed { opens_at: None }
    );
}

#[test]
fn bad_schedules_are_refused_naming_the_key() {
    let refused = |change: fn(&mut HoursConfig)| {
        let mut config = madrid();
        change(&mut config);
        BusinessHours::new(&config, "hours[0]").expect_err("refused")
    };
    assert!(refused(|c| c.time_zone = "Mars/Olympus".into()).starts_with("hours[0].time_zone:"));
    assert!(refused(|c| c.monday = vec!["18:00-08:00".into()]).starts_with("hours[0].monday[0]:"));
    assert!(refused(|c| c.monday = vec!["8-18".into()]).starts_with("hours[0].monday[0]:"));
    assert!(
        refused(|c| c.tuesday = vec!["08:00-14:00".into(), "13:00-18:00".into()])
            .starts_with("hours[0].tuesday[1]:")
    );
    assert!(
        refused(|c| c.holidays = vec!["25/12/2026".into()]).starts_with("hours[0].holidays[0]:")
    );
    assert!(
        refused(|c| c.exceptions[0].date = "2026-12-25".into())
            .starts_with("hours[0].exceptions[0].date:")
    );
}

#[test]
fn minutes_are_rounded_up() {
    let now = at("2026-12-03T09:00:00Z");
    assert_eq!(minutes_until(now, at("2026-12-03T09:00:01Z")), 1);
    assert_eq!(minutes_until(now, at("2026-12-03T09:04:00Z")), 4);
    assert_eq!(minutes_until(now, at("2026-12-03T08:00:00Z")), 0);
}

#[test]
fn several_schedules_are_open_together_only_where_all_are() {
    let office = hours(&madrid());
    // Saturdays 12:00-20:00 in Madrid: with the office, 12:00-13:00 only.
    let saturdays = hours(&HoursConfig {
        name: "saturdays".into(),
        time_zone: "Europe/Madrid".into(),
        saturday: vec!["12:00-20:00".into()],
        ..HoursConfig::default()
    });
    // Thursday morning: the office is open, Saturdays are not.
    assert_eq!(
        all_open(&[&office, &saturdays], at("2026-12-03T09:30:00Z")),
        closed_until("2026-12-05T11:00:00Z")
    );
    assert_eq!(
        all_open(&[&office, &saturdays], at("2026-12-05T11:30:00Z")),
        open_until("2026-12-05T12:00:00Z")
    );
    assert_eq!(
        all_open(&[], at("2026-12-05T11:30:00Z")),
        OpenNow::Open { closes_at: None }
    );
}
