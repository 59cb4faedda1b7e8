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
use baton_proto::connector::v1::TransferEventKind;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use common::*;

/// A connector process: its own runtime, dropped at once to crash it.
struct Process {
    runtime: Option<tokio::runtime::Runtime>,
    grpc: SocketAddr,
}

impl Process {
    /// Starts the connector; the address may still be held by a crashed
    /// predecessor for a moment, so binding is tried again (bounded).
    fn start(config: ConnectConfig) -> Process {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let mut tries = 0;
            let bound = loop {
                match runtime.block_on(baton_connector_amazon_connect::bind(config.clone())) {
                    Ok(bound) => break bound,
                    Err(error) if tries < 50 => {
                        tries += 1;
                        eprintln!("binding again: {error:#}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(error) => panic!("the connector does not bind: {error:#}"),
                }
            };
            let grpc = bound.addr;
            runtime.spawn(bound.serve(std::future::pending()));
            Process {
                runtime: Some(runtime),
                grpc,
            }
        })
        .join()
        .expect("the connector's thread")
    }

    /// Ends the process as kill -9 would: every task dropped where it is.
    fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[tokio::test]
async fn a_resumed_transfer_follows_the_contact_it_made_and_moves_nothing_again() {
    let server = ContractServer::start().await;
    let config = config(&server);
    let first = Process::start(config.clone());
    let contact = contact_id("TASK", 1);
    let mut client = ConnectorServiceClient::connect(format!("http://{}", first.grpc))
        .await
        .expect("connects");
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
    second_config.listen = first.grpc;
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
