//! The checks, one file per part of the contract, and the session they
//! share: the connection, the connector's advertised info, the profile, and
//! a journal of every stream the kit read (the event-order checks run over
//! all of them at the end).

mod availability;
mod capabilities;
mod chat;
mod identity;
mod invalid;
mod restart;
mod stream;
mod tenants;
mod transfers;

use std::time::{Duration, Instant, SystemTime};

use baton_proto::connector::v1::{
    GetConnectorInfoResponse, StartTransferRequest, TransferEventKind,
};
use baton_proto::types::v1::{TargetKind, TransferMode};

use crate::client::{ConnectorClient, Follower};
use crate::events::{Observed, StreamEnd, is_terminal, reason_name};
use crate::launch::Launched;
use crate::profile::{Expectation, Profile, SampleTarget};
use crate::report::{Outcome, Report};
use crate::requests;
use crate::{Subject, events};

/// What the checks share.
pub struct Session {
    pub client: ConnectorClient,
    pub info: GetConnectorInfoResponse,
    pub profile: Profile,
    /// Every stream the kit read, for the event-order checks.
    pub journal: Vec<Observed>,
    pub report: Report,
    /// The event kinds a holding transfer passes through before it holds,
    /// in order: the stages a cancel can reach.
    pub hold_stages: Option<Vec<i32>>,
    /// A transfer that ended, with the request that started it.
    pub ended: Option<(StartTransferRequest, Observed)>,
    pub launched: Option<Launched>,
    /// The human side of the connector's chats, when the runner gave one.
    pub human: Option<std::sync::Arc<dyn crate::ChatHuman>>,
}

impl Session {
    /// Runs one check unless the profile skips it, and records its outcome.
    pub async fn check(&mut self, id: &str, check: impl AsyncFnOnce(&mut Session) -> Outcome) {
        let started = Instant::now();
        let outcome = if self.profile.skips(id) {
            Outcome::Skip("skipped by the profile".into())
        } else {
            check(self).await
        };
        self.report.push(id, outcome, started.elapsed());
    }

    pub fn advertises_kind(&self, kind: TargetKind) -> bool {
        self.info.target_kinds.contains(&(kind as i32))
    }

    pub fn advertises_mode(&self, mode: TransferMode) -> bool {
        self.info.transfer_modes.contains(&(mode as i32))
    }

    pub fn advertised_modes(&self) -> Vec<TransferMode> {
        requests::TRANSFER_MODES
            .into_iter()
            .filter(|m| self.advertises_mode(*m))
            .collect()
    }

    /// The first advertised mode `sample` may be used with.
    pub fn mode_for(&self, sample: &SampleTarget) -> Option<TransferMode> {
        self.advertised_modes()
            .into_iter()
            .find(|m| sample.allows(*m))
    }

    /// The profile's samples with `expect` whose kind is advertised.
    pub fn samples(&self, expect: Expectation) -> Vec<SampleTarget> {
        self.profile
            .samples(expect)
            .filter(|s| s.kind().is_some_and(|k| self.advertises_kind(k)))
            .cloned()
            .collect()
    }

    /// A holding sample and the mode to use it with.
    pub fn holding(&self) -> Result<(SampleTarget, TransferMode), String> {
        self.samples(Expectation::Holds)
            .into_iter()
            .find_map(|s| self.mode_for(&s).map(|m| (s, m)))
            .ok_or_else(|| {
                "no sample target that holds (expect = \"holds\") of an advertised kind and mode"
                    .to_string()
            })
    }

    /// A StartTransfer request for `sample`, attempt 1 of a new handoff,
    /// due in `deadline`.
    pub fn request(
        &self,
        sample: &SampleTarget,
        mode: TransferMode,
        deadline: Duration,
    ) -> StartTransferRequest {
        let handoff_id = requests::new_handoff_id();
        let mut envelope = requests::envelope(
            &handoff_id,
            &self.info.context_capabilities,
            sample.sip_gateway_uri.as_deref(),
        );
        if let Some(contact) = &sample.platform_contact_id
            && let Some(call) = envelope.conversation.as_mut().and_then(|c| c.call.as_mut())
        {
            call.platform_contact_id = requests::platform_contact_id(contact, &handoff_id);
        }
        let target = sample.target().unwrap_or_else(|_| {
            requests::synthesized_target(TargetKind::Queue).expect("queues can be synthesized")
        });
        requests::start_request(
            &handoff_id,
            1,
            target,
            mode,
            envelope,
            SystemTime::now() + deadline,
        )
    }

    /// The default deadline: long enough for any sample to end on its own.
    pub fn long_deadline(&self) -> Duration {
        self.profile.transfer_timeout * 4
    }

    /// Records a stream in the journal.
    pub fn keep(&mut self, observed: Observed) {
        self.journal.push(observed);
    }

    /// Starts `request` (journalled as `label`) and, unless the connector
    /// refused it outright, lets its first events come in.
    pub async fn start_settled(
        &mut self,
        request: StartTransferRequest,
        label: String,
    ) -> Follower {
        let mut follower = self.client.start_observed(request, label).await;
        if follower.refusal().is_none() {
            follower
                .settle(self.profile.settle, self.profile.settle * 2)
                .await;
        }
        follower
    }

    /// Cancels the transfer behind `follower` when it is still running
    /// (the kit cleans up what it started), reads it to its end and
    /// journals it.
    pub async fn clean_up(
        &mut self,
        request: &StartTransferRequest,
        follower: Follower,
    ) -> Observed {
        self.clean_up_as(requests::TENANT, request, follower).await
    }

    /// [`Self::clean_up`] for a transfer of another tenant than the kit's.
    pub async fn clean_up_as(
        &mut self,
        tenant: &str,
        request: &StartTransferRequest,
        mut follower: Follower,
    ) -> Observed {
        if follower.is_open() && follower.observed.terminal().is_none() {
            let _ = self
                .client
                .cancel_as(tenant, &request.handoff_id, request.attempt)
                .await;
            follower.finish(self.profile.grace).await;
        }
        let observed = follower.into_observed();
        self.keep(observed.clone());
        observed
    }

    /// Reads a holding sample's stream until it holds: its `holds_after`
    /// event (when the profile names one), then a quiet spell of `settle`.
    pub async fn await_hold(&self, sample: &SampleTarget, follower: &mut Follower) {
        if let Ok(Some(kind)) = sample.holds_after_kind() {
            follower
                .wait_for(|e| e.kind == kind as i32, self.profile.transfer_timeout)
                .await;
        }
        follower
            .settle(self.profile.settle, self.profile.transfer_timeout)
            .await;
    }

    /// Runs `sample` in `mode` to the end its expectation says, then cleans
    /// up; returns what was seen and whether it met the expectation.
    pub async fn run_sample(
        &mut self,
        sample: &SampleTarget,
        mode: TransferMode,
        label: String,
    ) -> (StartTransferRequest, Observed, Result<String, String>) {
        let request = self.request(sample, mode, self.long_deadline());
        let mut follower = self.client.start_observed(request.clone(), label).await;
        match sample.expect {
            Expectation::Holds => self.await_hold(sample, &mut follower).await,
            Expectation::Connects | Expectation::Fails => {
                follower.finish(self.profile.transfer_timeout).await;
            }
        }
        let verdict = judge(sample, &follower.observed);
        let observed = self.clean_up(&request, follower).await;
        if verdict.is_ok() && sample.expect != Expectation::Holds && self.ended.is_none() {
            self.ended = Some((request.clone(), observed.clone()));
        }
        (request, observed, verdict)
    }
}

/// Whether a sample's stream ended as its expectation says.
pub fn judge(sample: &SampleTarget, observed: &Observed) -> Result<String, String> {
    let seen = observed.summary();
    if let StreamEnd::Status(code, message) = &observed.end {
        return Err(format!("ended with status {code:?} ({message}): {seen}"));
    }
    let terminal = observed.terminal();
    match sample.expect {
        Expectation::Connects => match terminal {
            Some(t) if t.kind == TransferEventKind::Completed as i32 && observed.connected() => {
                Ok(seen)
            }
            Some(_) => Err(format!("expected CONNECTED then COMPLETED; saw {seen}")),
            None => Err(format!("no terminal event in time; saw {seen}")),
        },
        Expectation::Fails => match terminal {
            Some(t) if t.kind == TransferEventKind::Failed as i32 => {
                match sample.required_reason() {
                    Ok(Some(reason)) if reason as i32 != t.failure_reason => Err(format!(
                        "expected FAILED({}); saw {seen}",
                        reason_name(reason as i32)
                    )),
                    _ => Ok(seen),
                }
            }
            Some(_) => Err(format!("expected FAILED; saw {seen}")),
            None => Err(format!("no terminal event in time; saw {seen}")),
        },
        Expectation::Holds => match (terminal, sample.holds_after_kind()) {
            (None, Ok(Some(after))) if !observed.events.iter().any(|e| e.kind == after as i32) => {
                Err(format!(
                    "expected the transfer to reach {} and hold; saw {seen}",
                    events::kind_name(after as i32)
                ))
            }
            (None, _) if observed.end == StreamEnd::Open => Ok(seen),
            _ => Err(format!("expected the transfer to hold; saw {seen}")),
        },
    }
}

/// Runs every check in order; the shutdown check last, as it stops the
/// connector.
pub async fn run_all(
    subject: Subject,
    profile: &Profile,
    human: Option<std::sync::Arc<dyn crate::ChatHuman>>,
) -> Report {
    let (endpoint, launched) = match subject {
        Subject::Address(endpoint) => (endpoint, None),
        Subject::Launched(launched) => (launched.endpoint.clone(), Some(*launched)),
    };
    let mut report = Report {
        subject: endpoint.clone(),
        results: Vec::new(),
    };
    let started = Instant::now();
    let client = match ConnectorClient::connect(&endpoint).await {
        Ok(client) => client,
        Err(error) => {
            report.push(
                "identity.info",
                Outcome::Fail(format!("{error:#}")),
                started.elapsed(),
            );
            return report;
        }
    };
    let info = match client.info().await {
        Ok(info) => info,
        Err(status) => {
            report.push(
                "identity.info",
                Outcome::Fail(format!(
                    "GetConnectorInfo failed: {:?} {}; nothing else can be checked",
                    status.code(),
                    status.message()
                )),
                started.elapsed(),
            );
            return report;
        }
    };
    report.subject = format!("{endpoint} ({} {})", info.name, info.version);
    let mut session = Session {
        client,
        info,
        profile: profile.clone(),
        journal: Vec::new(),
        report,
        hold_stages: None,
        ended: None,
        launched,
        human,
    };
    identity::run(&mut session).await;
    capabilities::run(&mut session).await;
    invalid::run(&mut session).await;
    transfers::run(&mut session).await;
    tenants::run(&mut session).await;
    chat::run(&mut session).await;
    availability::run(&mut session).await;
    stream::run_event_checks(&mut session).await;
    restart::run(&mut session).await;
    stream::run_shutdown(&mut session).await;
    session.report
}

/// `FAILED(DEADLINE_EXCEEDED)` and the like, for messages.
pub fn terminal_name(observed: &Observed) -> String {
    match observed.terminal() {
        Some(t) if t.kind == TransferEventKind::Failed as i32 => {
            format!("FAILED({})", reason_name(t.failure_reason))
        }
        Some(t) => events::kind_name(t.kind),
        None => "no terminal event".into(),
    }
}

pub fn is_cancelled(observed: &Observed) -> bool {
    observed
        .terminal()
        .is_some_and(|t| t.kind == TransferEventKind::Cancelled as i32)
}

pub fn ended(observed: &Observed) -> bool {
    observed.events.iter().any(|e| is_terminal(e.kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_proto::connector::v1::StartTransferResponse;
    use baton_proto::types::v1::{FailureReason, target};

    fn observed(kinds: &[TransferEventKind], end: StreamEnd) -> Observed {
        Observed {
            label: "t".into(),
            events: kinds
                .iter()
                .enumerate()
                .map(|(i, k)| StartTransferResponse {
                    sequence: i as u64 + 1,
                    kind: *k as i32,
                    failure_reason: if *k == TransferEventKind::Failed {
                        FailureReason::Busy as i32
                    } else {
                        0
                    },
                    ..Default::default()
                })
                .collect(),
            end,
        }
    }

    fn sample(expect: Expectation) -> SampleTarget {
        SampleTarget::new(target::Kind::Queue(Default::default()), expect)
    }

    use TransferEventKind as K;

    #[test]
    fn samples_are_judged_by_their_expectation() {
        let connected = observed(&[K::Ringing, K::Connected, K::Completed], StreamEnd::Closed);
        let busy = observed(&[K::Ringing, K::Failed], StreamEnd::Closed);
        let ringing = observed(&[K::Ringing], StreamEnd::Open);
        let refused = observed(
            &[],
            StreamEnd::Status(tonic::Code::Unimplemented, "no".into()),
        );

        assert!(judge(&sample(Expectation::Connects), &connected).is_ok());
        assert!(judge(&sample(Expectation::Connects), &busy).is_err());
        assert!(judge(&sample(Expectation::Connects), &ringing).is_err());
        assert!(judge(&sample(Expectation::Fails), &busy).is_ok());
        assert!(judge(&sample(Expectation::Fails), &connected).is_err());
        assert!(judge(&sample(Expectation::Holds), &ringing).is_ok());
        assert!(judge(&sample(Expectation::Holds), &busy).is_err());
        let mut after_offer = sample(Expectation::Holds);
        after_offer.holds_after = Some("offered".into());
        assert!(
            judge(&after_offer, &ringing)
                .expect_err("not offered")
                .contains("OFFERED")
        );
        for expect in [
            Expectation::Connects,
            Expectation::Fails,
            Expectation::Holds,
        ] {
            assert!(judge(&sample(expect), &refused).is_err());
        }
        let mut no_answer = sample(Expectation::Fails);
        no_answer.reason = Some("no_answer".into());
        assert!(
            judge(&no_answer, &busy)
                .expect_err("wrong reason")
                .contains("NO_ANSWER")
        );
        // COMPLETED without CONNECTED is not a connection.
        let hollow = observed(&[K::Ringing, K::Completed], StreamEnd::Closed);
        assert!(judge(&sample(Expectation::Connects), &hollow).is_err());
    }
}
