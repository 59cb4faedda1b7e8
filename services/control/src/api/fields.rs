//! Request fields several calls share: handoff ids, page sizes and page
//! tokens, read the same way everywhere.

use baton_service_kit::status::FieldViolation;

use crate::error::ControlError;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

/// Ids are UUIDs; anything else cannot name a handoff.
pub(super) fn parse_id(id: &str) -> Result<(), ControlError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ControlError::invalid_field("handoff_id", "must be a handoff id (a UUID)"))
}

/// A list request's page size: the default for 0, at most MAX_PAGE_SIZE
/// (a violation beyond).
pub(super) fn page_size(requested: u32, violations: &mut Vec<FieldViolation>) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            violations.push(FieldViolation::new(
                "page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
            MAX_PAGE_SIZE
        }
        n => n,
    }
}

/// Where a list request resumes: nothing for an empty token, else what
/// `parse` finds in it, or a violation when it is not a token of `rpc`.
pub(super) fn page_token<T>(
    token: &str,
    rpc: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    violations: &mut Vec<FieldViolation>,
) -> Option<T> {
    if token.is_empty() {
        return None;
    }
    let parsed = parse(token);
    if parsed.is_none() {
        violations.push(FieldViolation::new(
            "page_token",
            format!("is not a token from {rpc}"),
        ));
    }
    parsed
}

/// The violations found, as the error of the whole request; none, `Ok`.
pub(super) fn reject_any(violations: Vec<FieldViolation>) -> Result<(), ControlError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ControlError::InvalidArgument(violations))
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_cap_with_a_violation() {
        let mut violations = Vec::new();
        assert_eq!(page_size(0, &mut violations), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7, &mut violations), 7);
        assert!(violations.is_empty());
        assert_eq!(page_size(501, &mut violations), MAX_PAGE_SIZE);
        assert_eq!(violations[0].field, "page_size");
    }

    #[test]
    fn a_token_that_does_not_parse_names_the_call() {
        let mut violations = Vec::new();
        assert_eq!(page_token("", "ListX", |_| Some(1), &mut violations), None);
        assert_eq!(
            page_token("t", "ListX", |_| Some(1), &mut violations),
            Some(1)
        );
        assert!(violations.is_empty());
        assert_eq!(
            page_token("t", "ListX", |_| None::<i32>, &mut violations),
            None
        );
        assert_eq!(violations[0].field, "page_token");
        assert_eq!(violations[0].description, "is not a token from ListX");
    }
}
