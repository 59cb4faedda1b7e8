use baton_proto::handoff::v1::AuditAction as Proto;

use super::*;
use crate::store::{HandoffLog, SqliteStore};

fn principal(tenant: &str) -> Principal {
    Principal {
        tenant: tenant.into(),
        subject: "desk".into(),
        credential_id: "key:desk".into(),
        roles: Default::default(),
    }
}

/// A store holding one handoff of tenant "acme", with its sensitive
/// entity "card", and the limits the API applies to it.
struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    limits: Limits,
    id: String,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let mut handoff = crate::http::sample_handoff();
        handoff.tenant = "acme".into();
        let id = handoff.id.clone();
        store.create(handoff, None, None).await.expect("create");
        Self {
            _dir: dir,
            store,
            limits: Limits::default(),
            id,
        }
    }

    fn audit(&self) -> Audit<'_> {
        Audit {
            store: &self.store,
            limits: &self.limits,
        }
    }
}

fn reveal(id: &str, entity: &str) -> RevealEntityRequest {
    RevealEntityRequest {
        handoff_id: id.into(),
        entity_name: entity.into(),
    }
}

#[tokio::test]
async fn a_revealed_value_leaves_with_its_record_and_only_for_its_tenant() {
    let fixture = Fixture::new().await;
    let (audit, id) = (fixture.audit(), &fixture.id);
    let acme = principal("acme");
    let revealed = audit
        .reveal_entity(&acme, reveal(id, "card"))
        .await
        .expect("reveal");
    assert_eq!(revealed.value, "4111111111111111");
    let error = audit
        .reveal_entity(&acme, reveal(id, "iban"))
        .await
        .expect_err("no such entity");
    assert!(matches!(error, ControlError::EntityNotFound), "{error:?}");
    let error = audit
        .reveal_entity(&principal("globex"), reveal(id, "card"))
        .await
        .expect_err("another tenant's handoff");
    assert!(
        matches!(
            error,
            ControlError::Store(crate::store::StoreError::NotFound)
        ),
        "{error:?}"
    );

    let listed = audit
        .list_records("acme", ListAuditRecordsRequest::default())
        .await
        .expect("list");
    let actions: Vec<_> = listed.records.iter().map(|r| r.action()).collect();
    assert_eq!(actions, [Proto::Revealed], "one record, of the one reveal");
    assert_eq!(listed.records[0].detail, "entity card");
    assert_eq!(listed.records[0].credential, "key:desk");
    assert!(
        audit
            .list_records("globex", ListAuditRecordsRequest::default())
            .await
            .expect("list")
            .records
            .is_empty()
    );
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_refuses_foreign_tokens() {
    let fixture = Fixture::new().await;
    let (audit, id) = (fixture.audit(), &fixture.id);
    let acme = principal("acme");
    for _ in 0..3 {
        audit
            .reveal_entity(&acme, reveal(id, "card"))
            .await
            .expect("reveal");
    }
    audit
        .revoke_context_tokens(
            &acme,
            RevokeContextTokensRequest {
                handoff_id: id.clone(),
            },
        )
        .await
        .expect("revoke");
    let page = |page_token: String| ListAuditRecordsRequest {
        handoff_id: id.clone(),
        page_size: 3,
        page_token,
        ..Default::default()
    };
    let first = audit
        .list_records("acme", page(String::new()))
        .await
        .expect("first");
    let actions: Vec<_> = first.records.iter().map(|r| r.action()).collect();
    assert_eq!(
        actions,
        [Proto::TokensRevoked, Proto::Revealed, Proto::Revealed]
    );
    assert!(!first.next_page_token.is_empty());
    let second = audit
        .list_records("acme", page(first.next_page_token))
        .await
        .expect("second");
    assert_eq!(second.records.len(), 1);
    assert!(second.next_page_token.is_empty());

    // A ListHandoffs token is not a ListAuditRecords token.
    let foreign = URL_SAFE_NO_PAD.encode(id);
    let Err(ControlError::InvalidArgument(violations)) =
        audit.list_records("acme", page(foreign)).await
    else {
        panic!("a foreign page token is refused");
    };
    assert_eq!(violations[0].field, "page_token");
}

#[tokio::test]
async fn the_audit_log_lists_by_action_and_refuses_an_unknown_one() {
    let fixture = Fixture::new().await;
    let (audit, id) = (fixture.audit(), &fixture.id);
    let acme = principal("acme");
    audit
        .reveal_entity(&acme, reveal(id, "card"))
        .await
        .expect("reveal");
    let revoke = RevokeContextTokensRequest {
        handoff_id: id.clone(),
    };
    audit
        .revoke_context_tokens(&acme, revoke)
        .await
        .expect("revoke");
    let reveals = audit
        .list_records(
            "acme",
            ListAuditRecordsRequest {
                action: Proto::Revealed as i32,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let actions: Vec<_> = reveals.records.iter().map(|r| r.action()).collect();
    assert_eq!(actions, [Proto::Revealed]);
    let to_webhook = audit
        .list_records(
            "acme",
            ListAuditRecordsRequest {
                connector: "webhook".into(),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(to_webhook.records.is_empty(), "nothing was disclosed");

    let Err(ControlError::InvalidArgument(violations)) = audit
        .list_records(
            "acme",
            ListAuditRecordsRequest {
                action: 99,
                connector: "bad\nname".into(),
                ..Default::default()
            },
        )
        .await
    else {
        panic!("an unknown action is refused");
    };
    let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["connector", "action"]);
}
