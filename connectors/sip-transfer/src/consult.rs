//! The human's decision on an attended transfer's consult leg, after the
//! brief: accept with one key, decline with another or by hanging up; no
//! decision in time is a decline. Other keys are ignored.

/// Which keys decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsultKeys {
    pub accept: char,
    pub decline: char,
}

/// What happened on the consult leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultEvent {
    /// A key, from RTP or SIP INFO.
    Digit(char),
    /// The human's phone hung up the consult leg (BYE).
    HungUp,
    /// The decide timeout passed.
    TimedOut,
}

/// The human's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accepted { detail: String },
    Declined { detail: String, hung_up: bool },
}

impl ConsultKeys {
    /// The decision `event` makes, if any: the first decision is final,
    /// and the caller stops asking once it has one.
    pub fn decide(&self, event: ConsultEvent) -> Option<Decision> {
        match event {
            ConsultEvent::Digit(key) if key.eq_ignore_ascii_case(&self.accept) => {
                Some(Decision::Accepted {
                    detail: format!("the human pressed {key} to accept"),
                })
            }
            ConsultEvent::Digit(key) if key.eq_ignore_ascii_case(&self.decline) => {
                Some(Decision::Declined {
                    detail: format!("the human pressed {key} to decline"),
                    hung_up: false,
                })
            }
            ConsultEvent::Digit(_) => None,
            ConsultEvent::HungUp => Some(Decision::Declined {
                detail: "the human hung up during the consult".into(),
                hung_up: true,
            }),
            ConsultEvent::TimedOut => Some(Decision::Declined {
                detail: "the human did not decide in time".into(),
                hung_up: false,
            }),
        }
    }
}

/// A key the configuration may name: 0-9, `*`, `#`, A-D.
pub fn is_dtmf_key(key: char) -> bool {
    key.is_ascii_digit() || matches!(key.to_ascii_uppercase(), '*' | '#' | 'A'..='D')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: ConsultKeys = ConsultKeys {
        accept: '1',
        decline: '2',
    };

    #[test]
    fn the_accept_key_accepts_and_the_decline_key_declines() {
        assert!(matches!(
            KEYS.decide(ConsultEvent::Digit('1')),
            Some(Decision::Accepted { .. })
        ));
        assert_eq!(
            KEYS.decide(ConsultEvent::Digit('2')),
            Some(Decision::Declined {
                detail: "the human pressed 2 to decline".into(),
                hung_up: false
            })
        );
    }

    #[test]
    fn other_keys_decide_nothing() {
        for key in ['0', '3', '9', '*', '#', 'A', 'D'] {
            assert_eq!(KEYS.decide(ConsultEvent::Digit(key)), None, "{key}");
        }
    }

    #[test]
    fn hanging_up_or_waiting_too_long_declines() {
        assert!(matches!(
            KEYS.decide(ConsultEvent::HungUp),
            Some(Decision::Declined { hung_up: true, .. })
        ));
        assert!(matches!(
            KEYS.decide(ConsultEvent::TimedOut),
            Some(Decision::Declined { hung_up: false, .. })
        ));
    }

    #[test]
    fn letter_keys_match_either_case_and_keys_are_checked() {
        let keys = ConsultKeys {
            accept: '#',
            decline: 'a',
        };
        assert!(matches!(
            keys.decide(ConsultEvent::Digit('A')),
            Some(Decision::Declined { .. })
        ));
        assert!(matches!(
            keys.decide(ConsultEvent::Digit('#')),
            Some(Decision::Accepted { .. })
        ));
        assert!(is_dtmf_key('*') && is_dtmf_key('d') && is_dtmf_key('0'));
        assert!(!is_dtmf_key('E') && !is_dtmf_key(' ') && !is_dtmf_key('x'));
    }
}
