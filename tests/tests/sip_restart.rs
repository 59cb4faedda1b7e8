//! A restart of the SIP connector in the middle of a burst of handoffs is a
//! non-event for the customers: real processes (the control service, the
//! SIP connector with its transfer journal, sipp as the first target's
//! phone, which rings until it is cancelled, and sipp as the fallback's
//! phone, which answers), and the SIP connector killed (kill -9) or
//! stopped (SIGTERM, its drain shorter than the ringing) while every
//! handoff of the burst rings, then started again on the same addresses.
//!
//! For every handoff: the first phone got exactly one INVITE (the new
//! process CANCELs what its predecessor sent, never INVITEs again; sipp's
//! scenario fails unless each call is CANCELled and its 487 acknowledged),
//! the first attempt failed INTERRUPTED, the route fell back to the phone
//! that answers, the handoff COMPLETED and its event log is gapless.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use baton_tests::burst::{Fault, check_gapless, event_log, spawn_create, tail};
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use tokio::task::JoinSet;

/// As many handoffs as sipp and a 2-core machine ring at once reliably.
const HANDOFFS: usize = 200;
/// sipp's own bound on its calls.
const SIPP_TIMEOUT: Duration = Duration::from_secs(240);

fn phone(scenario: &str, name: &str, dir: &Path) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .named(name)
        .calls(HANDOFFS)
        .timeout(SIPP_TIMEOUT)
        .logs_in(dir)
        .start()
}

async fn start_sip(dir: &Path, grpc: &str, sip: &str) -> Service {
    // Ringing outlasts the restart; the drain does not outlast the ringing.
    let config = format!(
        "listen = \"{grpc}\"\nring_timeout = \"90s\"\ndrain_timeout = \"1s\"\n\
         data_dir = {data:?}\n\n[sip]\nbind = \"{sip}\"\nt1 = \"200ms\"\n",
        data = dir.join("sip").display().to_string(),
    );
    baton_tests::sip::start_connector(dir, &config).await
}

async fn start_control(dir: &Path, sip: &Service, rings: &Sipp, answers: &Sipp) -> Service {
    let rest = format!(
        r#"
# The burst is created at once.
[rate_limit]
requests_per_second = 1000.0
burst = 1000

[[routes]]
name = "sip-restart"
targets = [{{ connector = "sip", sip_uri = "{rings}" }}, {{ connector = "sip", sip_uri = "{answers}" }}]
"#,
        rings = rings.uri("agent"),
        answers = answers.uri("agent"),
    );
    baton_tests::sip::start_control(dir, sip, &rest).await
}

/// The context the phones' scenarios check in each INVITE, to the
/// route, with a timeout that outlasts the restart.
fn request(request_id: &str) -> CreateHandoffRequest {
    let route = pb::target::Kind::Route("sip-restart".into());
    CreateHandoffRequest {
        timeout: Some(prost_types::Duration {
            seconds: 180,
            nanos: 0,
        }),
        ..baton_tests::sip_request(request_id, route)
    }
}

/// The INVITEs a phone received, counted by the handoff they carry.
fn invites_by_handoff(messages: &str) -> BTreeMap<String, usize> {
    let mut invites = BTreeMap::new();
    let mut in_invite = false;
    for line in messages.lines() {
        if line.starts_with("INVITE sip:") {
            in_invite = true;
        } else if line.starts_with("SIP/2.0 ") || line.split(' ').nth(2) == Some("SIP/2.0") {
            in_invite = false;
        }
        if in_invite && let Some(id) = line.strip_prefix("X-Baton-Handoff-Id:") {
            *invites.entry(id.trim().to_owned()).or_default() += 1;
            in_invite = false;
        }
    }
    invites
}

#[derive(Debug, Default)]
struct Tally {
    lost: usize,
    rung_twice: usize,
    failed: usize,
    fell_back: usize,
    interrupted: usize,
}

async fn run(fault: Fault) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rings = phone("agent_never_answers", "rings", dir.path());
    let answers = phone("agent_answers_any", "answers", dir.path());
    let sip = start_sip(dir.path(), "127.0.0.1:0", "127.0.0.1:0").await;
    let (sip_grpc, sip_addr) = (sip.addr("grpc"), sip.addr("sip"));
    let control = start_control(dir.path(), &sip, &rings, &answers).await;
    let client = baton_tests::handoff_client(&control).await;

    let mut creates = JoinSet::new();
    for n in 0..HANDOFFS {
        spawn_create(&mut creates, &client, request(&format!("sip-burst-{n}")));
    }
    let ids: Vec<String> = creates.join_all().await;

    // The fault hits once every handoff rings at the first phone (bounded).
    let mut ringing = 0;
    for _ in 0..1200 {
        ringing = invites_by_handoff(&rings.messages()).len();
        if ringing >= HANDOFFS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ringing, HANDOFFS, "not every handoff rang before the fault");
    // Let the 180s come back and their RINGING reach the control service.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fault.strike(sip, "SIP connector").await;
    assert!(
        !rings.messages().contains("CANCEL sip:"),
        "the stopping connector cancelled legs itself"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _sip = start_sip(dir.path(), &sip_grpc.to_string(), &sip_addr.to_string()).await;

    let mut tally = Tally::default();
    let mut client = client.clone();
    let mut problems = Vec::new();
    for id in &ids {
        // Bounded: 180 s for the first, less for the rest as they end.
        let state = baton_tests::wait_until_ended(&mut client, id, 7200).await;
        match state {
            HandoffState::Completed => {}
            HandoffState::Failed => tally.failed += 1,
            other => {
                tally.lost += 1;
                problems.push(format!("{id}: still {other:?}"));
            }
        }
    }
    for id in &ids {
        let events = event_log(&mut client, id).await;
        if let Err(problem) = check_gapless(id, &events) {
            problems.push(problem);
        }
        let failures: Vec<&HandoffEvent> = events
            .iter()
            .filter(|e| e.kind() == HandoffEventKind::TargetFailed)
            .collect();
        if !failures.is_empty() {
            tally.fell_back += 1;
        }
        let interrupted = failures.iter().find_map(|e| {
            e.failure
                .as_ref()
                .filter(|f| f.reason() == pb::FailureReason::Interrupted)
        });
        if let Some(failure) = interrupted {
            tally.interrupted += 1;
            // The new process said what it ended: the INVITE its
            // predecessor sent, cancelled.
            if !failure
                .detail
                .contains("the INVITE to the human was cancelled (487)")
            {
                problems.push(format!("{id}: interrupted: {}", failure.detail));
            }
        } else {
            let reasons: Vec<_> = failures
                .iter()
                .map(|e| e.failure.as_ref().map(|f| (f.reason(), f.detail.clone())))
                .collect();
            problems.push(format!("{id}: no INTERRUPTED attempt: {reasons:?}"));
        }
    }
    let first = invites_by_handoff(&rings.messages());
    let second = invites_by_handoff(&answers.messages());
    for id in &ids {
        let invites = first.get(id).copied().unwrap_or(0);
        if invites != 1 || second.get(id).copied().unwrap_or(0) > 1 {
            tally.rung_twice += 1;
            problems.push(format!(
                "{id}: {invites} INVITEs to the first phone, {:?} to the fallback",
                second.get(id)
            ));
        }
    }
    println!(
        "connector restart: sip, {fault:?}, with fallback: {HANDOFFS} handoffs ({ringing} ringing at the fault): \
         {} lost, {} rung twice, {} failed, {} fell back ({} after an INTERRUPTED attempt)",
        tally.lost, tally.rung_twice, tally.failed, tally.fell_back, tally.interrupted,
    );
    assert!(
        problems.is_empty(),
        "{problems:#?}\ncontrol log tail: {}",
        tail(&control.logs())
    );
    assert_eq!(
        (
            tally.lost,
            tally.rung_twice,
            tally.failed,
            tally.interrupted
        ),
        (0, 0, 0, HANDOFFS),
        "{tally:?}"
    );
    // Every ringing call was CANCELled by the new process and its 487
    // acknowledged; every fallback call was answered and acknowledged.
    rings.assert_passed().await;
    answers.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_connector_killed_while_a_burst_rings() {
    run(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_connector_terminated_while_a_burst_rings() {
    run(Fault::Terminate).await;
}
