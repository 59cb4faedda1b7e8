//! Timestamps a caller sends (`Turn.at`). A value outside a sane window is a
//! caller's bug (an unset clock, milliseconds sent as seconds), and would
//! be shown to the human as is.

use crate::Violations;

/// 2000-01-01T00:00:00Z: nothing a caller reports happened before.
pub const EARLIEST_SECONDS: i64 = 946_684_800;
/// 2100-01-01T00:00:00Z (exclusive).
pub const LATEST_SECONDS: i64 = 4_102_444_800;

/// Checks a `google.protobuf.Timestamp` at `path`.
pub fn check_timestamp(path: &str, at: &prost_types::Timestamp, v: &mut Violations) {
    if !(0..1_000_000_000).contains(&at.nanos) {
        v.add(path, "nanos must be 0 to 999,999,999");
    }
    if !(EARLIEST_SECONDS..LATEST_SECONDS).contains(&at.seconds) {
        v.add(
            path,
            "must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z (seconds since the Unix epoch)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(seconds: i64, nanos: i32) -> usize {
        let mut v = Violations::default();
        check_timestamp("at", &prost_types::Timestamp { seconds, nanos }, &mut v);
        v.finish().err().map_or(0, |violations| violations.len())
    }

    #[test]
    fn the_window_and_the_nanos() {
        assert_eq!(problems(1_767_225_600, 0), 0);
        assert_eq!(problems(EARLIEST_SECONDS, 999_999_999), 0);
        assert_eq!(problems(EARLIEST_SECONDS - 1, 0), 1);
        assert_eq!(problems(LATEST_SECONDS, 0), 1);
        assert_eq!(problems(i64::MIN, 0), 1);
        assert_eq!(problems(1_767_225_600_000, 0), 1, "milliseconds as seconds");
        assert_eq!(problems(1_767_225_600, -1), 1);
        assert_eq!(problems(1_767_225_600, 1_000_000_000), 1);
    }
}
