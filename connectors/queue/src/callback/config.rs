//! `[callback]`: how the queue dials a customer back once an agent took
//! the callback (agent-first: the agent's phone, then the customer's).

use std::time::Duration;

use serde::Deserialize;

/// How a callback's customer is dialed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// Dials of the customer's number before the callback fails
    /// (NO_ANSWER, BUSY or UNREACHABLE, as the last dial ended). 1 to 10;
    /// default 3.
    pub attempts: u32,
    /// The pause between two dials. At most 10m; default 30s.
    #[serde(with = "humantime_serde")]
    pub retry_delay: Duration,
    /// How long the customer's phone may ring per dial. 1s to 5m; default
    /// 25s.
    #[serde(with = "humantime_serde")]
    pub customer_ring_timeout: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            attempts: 3,
            retry_delay: Duration::from_secs(30),
            customer_ring_timeout: Duration::from_secs(25),
        }
    }
}

impl CallbackConfig {
    /// Checks the bounds; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.attempts) {
            return Err("callback.attempts: from 1 to 10".into());
        }
        if self.retry_delay > Duration::from_secs(600) {
            return Err("callback.retry_delay: at most 10m".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300))
            .contains(&self.customer_ring_timeout)
        {
            return Err("callback.customer_ring_timeout: from 1s to 5m".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_key() {
        CallbackConfig::default().validate().expect("valid");
        let read: CallbackConfig =
            toml::from_str("attempts = 2\nretry_delay = \"5s\"\ncustomer_ring_timeout = \"20s\"")
                .expect("parses");
        assert_eq!(read.attempts, 2);
        assert_eq!(read.retry_delay, Duration::from_secs(5));
        let zero = CallbackConfig {
            attempts: 0,
            ..CallbackConfig::default()
        };
        assert!(
            zero.validate()
                .expect_err("refused")
                .starts_with("callback.attempts")
        );
        let long = CallbackConfig {
            customer_ring_timeout: Duration::from_secs(600),
            ..CallbackConfig::default()
        };
        assert!(
            long.validate()
                .expect_err("refused")
                .starts_with("callback.customer_ring_timeout")
        );
        assert!(toml::from_str::<CallbackConfig>("attempt = 2").is_err());
    }
}
