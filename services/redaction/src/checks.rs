//! The check digits and calendar rules that tell a real card number, IBAN
//! or national id from digits that merely look like one.

/// Whether `digits` (ASCII digits only) pass the Luhn check, as every
/// payment card number does.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(digit - b'0');
        if i % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    sum.is_multiple_of(10)
}

/// Whether `compact` (letters and digits, no spaces) is a valid IBAN by
/// ISO 13616: 15 to 34 characters, a country code, two check digits, and
/// the whole number with its first four characters moved to the end
/// equal to 1 modulo 97.
pub(crate) fn iban(compact: &str) -> bool {
    let bytes = compact.as_bytes();
    if !(15..=34).contains(&bytes.len())
        || !bytes[..2].iter().all(u8::is_ascii_alphabetic)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut remainder = 0u32;
    for &byte in bytes[4..].iter().chain(&bytes[..4]) {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            _ => u32::from(byte.to_ascii_uppercase() - b'A') + 10,
        };
        // Letters are two decimal digits.
        let shift = if value > 9 { 100 } else { 10 };
        remainder = (remainder * shift + value) % 97;
    }
    remainder == 1
}

/// Whether `area-group-serial` can be a US Social Security number: none of
/// its parts all zeros, and the area neither 666 nor 900 to 999 (never
/// issued).
pub(crate) fn ssn(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// The check letter of a Spanish DNI number (or NIE with its prefix
/// letter replaced by 0, 1 or 2).
pub(crate) fn dni_letter(number: u32) -> char {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    char::from(LETTERS[(number % 23) as usize])
}

/// Whether a UK National Insurance number's two prefix letters are ever
/// issued (the character classes of the pattern exclude D, F, I, Q, U, V
/// and O in the second place; these pairs are excluded as a whole).
pub(crate) fn nino_prefix(prefix: &str) -> bool {
    !matches!(
        prefix.to_ascii_uppercase().as_str(),
        "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ"
    )
}

/// Whether day and month make a calendar date in some year (29 February
/// included).
pub(crate) fn day_month(day: u32, month: u32) -> bool {
    let days = match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_refuses_a_changed_digit() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"5500005555555559"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b"1234567812345678"));
    }

    #[test]
    fn iban_checks_its_check_digits() {
        assert!(iban("DE89370400440532013000"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("gb82west12345698765432"));
        assert!(!iban("DE89370400440532013001"));
        assert!(!iban("DE8937040044"));
        assert!(!iban("1289370400440532013000"));
    }

    #[test]
    fn national_id_rules() {
        assert!(ssn(123, 45, 6789));
        assert!(!ssn(666, 45, 6789));
        assert!(!ssn(901, 45, 6789));
        assert!(!ssn(123, 0, 6789));
        assert_eq!(dni_letter(12_345_678), 'Z');
        assert!(nino_prefix("AB"));
        assert!(!nino_prefix("GB"));
    }

    #[test]
    fn calendar_dates() {
        assert!(day_month(29, 2));
        assert!(!day_month(30, 2));
        assert!(!day_month(31, 4));
        assert!(!day_month(1, 13));
        assert!(!day_month(0, 1));
    }
}
