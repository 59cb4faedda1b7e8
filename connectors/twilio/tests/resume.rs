//! A restart of the Twilio connector in the middle of a transfer: the
//! connector runs in a runtime of its own, which the test drops at once
//! (as kill -9 ends a process), and a new one starts on the same
//! addresses and journal; the control service's re-attach (the same
//! StartTransfer) resumes the transfer there.
//!
//! The resumed transfer never updates the call a second time: it follows
//! the call under the callback key the first process gave Twilio, takes
//! the callbacks signed for it (also those that came between the restart
//! and the re-attach), and reaches the true outcome.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::testing::{next_event as next, start_transfer};
use baton_connector_twilio::TwilioConfig;
use baton_proto::connector::v1::TransferEventKind;
use baton_proto::types::v1::{FailureReason, target};
use baton_tests::InProcess;
use common::*;

/// A connector process: its own runtime, dropped at once to crash it.
struct Process {
    connector: InProcess,
    grpc: SocketAddr,
    callbacks: SocketAddr,
}

impl Process {
    fn start(config: TwilioConfig) -> Process {
        let (connector, (grpc, callbacks)) = InProcess::start(move || {
            let config = config.clone();
            async move {
                let bound = baton_connector_twilio::bind(config).await?;
                let addresses = (bound.grpc_addr, bound.callbacks_addr);
                Ok((addresses, bound.serve(std::future::pending())))
            }
        });
        Process {
            connector,
            grpc,
            callbacks,
        }
    }

    /// The configuration of the same process started again: the same
    /// addresses and journal.
    fn again(&self, config: &TwilioConfig) -> TwilioConfig {
        let mut config = config.clone();
        config.server.grpc_listen = self.grpc;
        config.callbacks.listen = self.callbacks;
        config
    }

    /// Ends the process as kill -9 would: every task dropped where it is.
    fn crash(self) {
        self.connector.crash();
    }
}

fn dial_callbacks(update: &Update) -> (String, String) {
    let Instruction::Dial {
        action: Some(action),
        status_callback: Some(status),
        ..
    } = &update.instruction
    else {
        panic!("not a Dial with callbacks: {}", update.twiml);
    };
    (status.clone(), action.clone())
}

#[tokio::test]
async fn a_resumed_dial_follows_the_same_call_and_takes_the_callbacks_of_the_old_key() {
    let call = call_sid(41);
    let (twilio, api) = serve_call(&call, &[("+14155550100", Outcome::Silent)]).await;
    let config = config(api);
    let first = Process::start(config.clone());
    let request = || {
        request(
            "h-resume-dial",
            &call,
            target::Kind::PhoneNumber("+14155550100".into()),
        )
    };
    let mut running = start_transfer(first.grpc, request()).await;
    let updates = twilio.wait_for_updates(1).await;
    let (status, action) = dial_callbacks(&updates[0]);
    // Ringing before the crash: the first process reports it.
    callback(&twilio, &status, form(&[("CallStatus", "ringing")])).await;
    assert_eq!(next(&mut running).await.kind(), TransferEventKind::Ringing);
    let second_config = first.again(&config);
    first.crash();

    // Answered while no process follows the transfer: the callback is
    // kept for it.
    let second = Process::start(second_config);
    callback(&twilio, &status, form(&[("CallStatus", "in-progress")])).await;
    let mut resumed = start_transfer(second.grpc, request()).await;
    assert_eq!(next(&mut resumed).await.kind(), TransferEventKind::Answered);
    assert_eq!(
        next(&mut resumed).await.kind(),
        TransferEventKind::Connected
    );
    callback(&twilio, &action, form(&[("DialCallStatus", "completed")])).await;
    let completed = next(&mut resumed).await;
    assert_eq!(completed.kind(), TransferEventKind::Completed);

    assert_eq!(
        twilio.updates().len(),
        1,
        "the call is never updated a second time"
    );
    let delivered = twilio.delivered();
    assert!(
        delivered.iter().all(|d| d.status == 200),
        "every callback of the old key is accepted: {delivered:#?}"
    );
    assert!(
        delivered
            .last()
            .expect("dial action")
            .body
            .contains("<Hangup/>"),
        "the call with the human is over: {delivered:#?}"
    );
}

#[tokio::test]
async fn a_transfer_connected_before_the_crash_stays_connected_and_its_call_alone() {
    let call = call_sid(42);
    let (twilio, api) = serve_call(&call, &[("+14155550101", Outcome::Silent)]).await;
    let config = config(api);
    let first = Process::start(config.clone());
    let request = || {
        request(
            "h-resume-connected",
            &call,
            target::Kind::PhoneNumber("+14155550101".into()),
        )
    };
    let mut running = start_transfer(first.grpc, request()).await;
    let updates = twilio.wait_for_updates(1).await;
    let (status, action) = dial_callbacks(&updates[0]);
    callback(&twilio, &status, form(&[("CallStatus", "in-progress")])).await;
    assert_eq!(next(&mut running).await.kind(), TransferEventKind::Answered);
    assert_eq!(
        next(&mut running).await.kind(),
        TransferEventKind::Connected
    );
    let second_config = first.again(&config);
    first.crash();

    let second = Process::start(second_config);
    let mut resumed = start_transfer(second.grpc, request()).await;
    assert_eq!(
        next(&mut resumed).await.kind(),
        TransferEventKind::Connected,
        "the new run says at once that the caller is with the human"
    );
    callback(&twilio, &action, form(&[("DialCallStatus", "completed")])).await;
    assert_eq!(
        next(&mut resumed).await.kind(),
        TransferEventKind::Completed
    );
    assert_eq!(twilio.updates().len(), 1, "no second call update, no hold");
}

#[tokio::test]
async fn an_update_in_flight_at_the_crash_is_not_sent_again_and_fails_interrupted() {
    let call = call_sid(43);
    let (twilio, api) = serve_call(&call, &[]).await;
    let mut config = config(api);
    // Twilio never answers the update in time: the first process is
    // killed with its request in flight.
    config.api_base = format!("http://{}", silent_server().await);
    config.request_timeout = Duration::from_secs(30);
    let first = Process::start(config.clone());
    let request = || {
        request(
            "h-resume-in-flight",
            &call,
            target::Kind::PhoneNumber("+14155550102".into()),
        )
    };
    let _running = start_transfer(first.grpc, request()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second_config = first.again(&config);
    first.crash();

    second_config.api_base = format!("http://{api}");
    let second = Process::start(second_config);
    let mut resumed = start_transfer(second.grpc, request()).await;
    let failed = next(&mut resumed).await;
    assert_eq!(failed.kind(), TransferEventKind::Failed);
    assert_eq!(failed.failure_reason(), FailureReason::Interrupted);
    // The caller was moved to hold, never dialled out again.
    let updates = twilio.updates();
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert!(
        !matches!(updates[0].instruction, Instruction::Dial { .. }),
        "{}",
        updates[0].twiml
    );
}

/// A server that accepts connections and never answers.
async fn silent_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}
