//! A restart of the Amazon Connect connector in the middle of a transfer:
//! the connector runs in a runtime of its own, which the test drops at
//! once (as kill -9 ends a process), and a new one starts on the same
//! address and journal; the control service's re-attach (the same
//! StartTransfer) resumes the transfer there. The resumed transfer
//! follows the contact the first process made, never moving the
//! customer's contact a second time.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_amazon_connect::ConnectConfig;
use baton_connector_sdk::testing;
use baton_proto::connector::v1::TransferEventKind;
use baton_tests::InProcess;
use common::*;

/// A connector process: its own runtime, dropped at once to crash it.
struct Process {
    connector: InProcess,
    grpc: SocketAddr,
}

impl Process {
    fn start(config: ConnectConfig) -> Process {
        let (connector, grpc) = InProcess::start(move || {
            let config = config.clone();
            async move {
                let bound = baton_connector_amazon_connect::bind(config).await?;
                let addresses = bound.addr;
                Ok((addresses, bound.serve(std::future::pending())))
            }
        });
        Process { connector, grpc }
    }

    /// Ends the process as kill -9 would: every task dropped where it is.
    fn crash(self) {
        self.connector.crash();
    }
}

#[tokio::test]
async fn a_resumed_transfer_follows_the_contact_it_made_and_moves_nothing_again() {
    let server = ContractServer::start().await;
    let config = config(&server);
    let first = Process::start(config.clone());
    let contact = contact_id("TASK", 1);
    let mut client = testing::client(first.grpc).await;
    let mut running = client
        .start_transfer(request("h-resume", &contact, "support"))
        .await
        .expect("started")
        .into_inner();
    // The first event comes from following the transferred contact: the
    // move is done and remembered.
    tokio::time::timeout(Duration::from_secs(10), running.message())
        .await
        .expect("an event in time")
        .expect("healthy")
        .expect("an event");
    let mut second_config = config.clone();
    second_config.server.grpc_listen = first.grpc;
    first.crash();

    let second = Process::start(second_config);
    let events = transfer(second.grpc, request("h-resume", &contact, "support")).await;
    let kinds = kinds(&events);
    assert_eq!(
        &kinds[kinds.len() - 2..],
        [TransferEventKind::Connected, TransferEventKind::Completed],
        "{events:#?}\n{}",
        server.logs()
    );
    let log = server.log().await;
    let count = |operation: &str| log.iter().filter(|e| e["operation"] == operation).count();
    assert_eq!(count("TransferContact"), 1, "one contact made: {log:#?}");
    assert_eq!(
        count("UpdateContactAttributes"),
        1,
        "the attributes set once: {log:#?}"
    );
}
