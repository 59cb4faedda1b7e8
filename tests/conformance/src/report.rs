//! The outcome of every check: a readable line each, and JUnit XML for CI.

use std::fmt::Write as _;
use std::time::Duration;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connector did what the contract says; the note says what was seen.
    Pass(String),
    /// It did not; the reason says what it did instead.
    Fail(String),
    /// The check could not run against this connector; the reason says why.
    Skip(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass(_) => "PASS",
            Self::Fail(_) => "FAIL",
            Self::Skip(_) => "SKIP",
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Self::Pass(text) | Self::Fail(text) | Self::Skip(text) => text,
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// A stable dotted id, e.g. `cancel.at_stage.ringing`.
    pub id: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Every check's result, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What was checked, e.g. the connector's address and name.
    pub subject: String,
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn push(&mut self, id: impl Into<String>, outcome: Outcome, elapsed: Duration) {
        self.results.push(CheckResult {
            id: id.into(),
            outcome,
            elapsed,
        });
    }

    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// The ids of the failed checks.
    pub fn failed(&self) -> Vec<&str> {
        self.ids(|o| matches!(o, Outcome::Fail(_)))
    }

    pub fn passed(&self) -> Vec<&str> {
        self.ids(|o| matches!(o, Outcome::Pass(_)))
    }

    pub fn skipped(&self) -> Vec<&str> {
        self.ids(|o| matches!(o, Outcome::Skip(_)))
    }

    fn ids(&self, keep: impl Fn(&Outcome) -> bool) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| keep(&r.outcome))
            .map(|r| r.id.as_str())
            .collect()
    }

    /// One line per check, then a summary line.
    pub fn render_text(&self) -> String {
        let width = self.results.iter().map(|r| r.id.len()).max().unwrap_or(0);
        let mut text = format!("baton-conformance: {}\n", self.subject);
        for result in &self.results {
            let _ = writeln!(
                text,
                "{} {:width$}  {}",
                result.outcome.label(),
                result.id,
                result.outcome.text()
            );
        }
        let _ = writeln!(
            text,
            "{} passed, {} failed, {} skipped",
            self.passed().len(),
            self.failed().len(),
            self.skipped().len()
        );
        text
    }

    /// JUnit XML: one test suite, one test case per check; the part of the
    /// id before its first dot is the class name.
    pub fn to_junit_xml(&self) -> String {
        let total: Duration = self.results.iter().map(|r| r.elapsed).sum();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"baton-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.results.len(),
            self.failed().len(),
            self.skipped().len(),
            total.as_secs_f64()
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            escape(&self.subject),
            self.results.len(),
            self.failed().len(),
            self.skipped().len(),
            total.as_secs_f64()
        );
        for result in &self.results {
            let class = result.id.split('.').next().unwrap_or_default();
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(class),
                escape(&result.id),
                result.elapsed.as_secs_f64()
            );
            match &result.outcome {
                Outcome::Pass(note) if note.is_empty() => xml.push_str("/>\n"),
                Outcome::Pass(note) => {
                    let _ = write!(
                        xml,
                        ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                        escape(note)
                    );
                }
                Outcome::Fail(reason) => {
                    let _ = write!(
                        xml,
                        ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                        escape(reason)
                    );
                }
                Outcome::Skip(reason) => {
                    let _ = write!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        escape(reason)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// Escapes text for an XML attribute or element, dropping the control
/// characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' => escaped.push_str("&#9;"),
            c if (c as u32) < 0x20 => escaped.push('?'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report {
            subject: "http://127.0.0.1:1 (script 0.1.0)".into(),
            results: Vec::new(),
        };
        report.push(
            "identity.info",
            Outcome::Pass("name \"script\"".into()),
            Duration::from_millis(3),
        );
        report.push(
            "events.one_terminal_last",
            Outcome::Fail("two terminal events: <COMPLETED> & \"FAILED\"\n".into()),
            Duration::ZERO,
        );
        report.push(
            "shutdown.drains",
            Outcome::Skip("not launched".into()),
            Duration::ZERO,
        );
        report
    }

    #[test]
    fn the_text_has_one_line_per_check_and_a_summary() {
        let text = sample().render_text();
        assert!(text.contains("PASS identity.info"), "{text}");
        assert!(text.contains("FAIL events.one_terminal_last"), "{text}");
        assert!(text.contains("SKIP shutdown.drains"), "{text}");
        assert!(text.contains("1 passed, 1 failed, 1 skipped"), "{text}");
        assert_eq!(sample().failed(), ["events.one_terminal_last"]);
    }

    #[test]
    fn junit_xml_counts_and_escapes() {
        let xml = sample().to_junit_xml();
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"two terminal events: &lt;COMPLETED&gt; &amp; &quot;FAILED&quot;&#10;\"/>"),
            "{xml}"
        );
        assert!(xml.contains("classname=\"shutdown\" name=\"shutdown.drains\""));
        assert!(xml.contains("<skipped message=\"not launched\"/>"));
        assert_eq!(escape("a\u{1}b"), "a?b");
    }
}
