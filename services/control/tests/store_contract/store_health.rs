//! The store health's contract: a store that takes writes answers its
//! ping, again and again (the probe is one row, rewritten), and after
//! being opened again; and the store is each of its roles on its own.

use std::sync::Arc;

use baton_control::store::{AuditLog, DispatchLeases, HandoffLog, Retention, StoreHealth};

use crate::Backend;

contract_suite!(a_store_that_takes_writes_answers_its_ping);

async fn a_store_that_takes_writes_answers_its_ping(backend: &impl Backend) {
    let store = backend.open().await;
    // Each part of the service may hold the one role it needs.
    let health: Arc<dyn StoreHealth> = store.clone();
    let _: Arc<dyn HandoffLog> = store.clone();
    let _: Arc<dyn DispatchLeases> = store.clone();
    let _: Arc<dyn AuditLog> = store.clone();
    let _: Arc<dyn Retention> = store.clone();
    for _ in 0..3 {
        health.ping().await.expect("ping");
    }
    drop((health, store));
    let store = backend.open().await;
    store.ping().await.expect("ping after reopening");
}
