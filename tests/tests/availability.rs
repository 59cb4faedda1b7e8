//! Business hours through the real binaries: CheckAvailability before the
//! AI promises a human (open, closed and when it opens, a closed first
//! target skipped for an open fallback, the customer message in the
//! customer's language), and CreateHandoff leaving closed targets out or
//! refusing with CLOSED when every target is closed. With the embedded
//! queue behind it, the check also says who is there, and the message
//! promises the wait the queue estimates.

mod common;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::{Service, handoff_client, start_control};
use common::{bad_fields, start_script_connector, watch_until};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const SCRIPT: &str = r#"
name = "script"
listen = "127.0.0.1:0"
default_script = ["ringing", "answered", "connected", "completed"]
"#;

const EVERY_DAY: &str = "[\"00:00-24:00\"]";

struct Stack {
    _dir: TempDir,
    _connector: Service,
    control: Service,
    /// The date (UTC) on which the `later` schedule opens, 10:00-11:00.
    later: jiff::civil::Date,
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let connector = start_script_connector(dir.path(), SCRIPT, &[]).await;
        // Three days from now, so that it is always ahead, whatever the
        // time of the run.
        let later = jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(jiff::Span::new().days(3))
            .expect("a date");
        let always: String = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .iter()
        .map(|day| format!("{day} = {EVERY_DAY}\n"))
        .collect();
        let sections = format!(
            r#"[connectors.script]
endpoint = "{endpoint}"

[default_connectors]
queue = "script"

[[hours]]
name = "always"
time_zone = "America/New_York"
{always}
[[hours]]
name = "never"
time_zone = "Europe/Madrid"

[[hours]]
name = "later"
time_zone = "UTC"
exceptions = [{{ date = "{later}", open = ["10:00-11:00"] }}]

[[routes]]
name = "open"
hours = "always"
targets = [{{ connector = "script", queue = "agents" }}]

[[routes]]
name = "closed"
hours = "never"
targets = [{{ connector = "script", queue = "agents" }}]

[[routes]]
name = "later"
hours = "later"
targets = [{{ connector = "script", queue = "agents" }}]

[[routes]]
name = "night-then-day"
targets = [{{ connector = "script", queue = "night", hours = "never" }}, {{ connector = "script", queue = "day", hours = "always" }}, {{ connector = "script", queue = "backup" }}]

[messages.templates.it]
opens_again = "Siamo chiusi; riapriamo il {{when}}. Possiamo richiamarla?"
"#,
            endpoint = connector.endpoint("grpc"),
        );
        let control = start_control(dir.path(), &sections, &[])
            .await
            .expect("start control");
        Self {
            _dir: dir,
            _connector: connector,
            control,
            later,
        }
    }

    async fn client(&self) -> HandoffServiceClient<Channel> {
        handoff_client(&self.control).await
    }
}

fn route(name: &str) -> Option<pb::Target> {
    Some(pb::Target {
        kind: Some(pb::target::Kind::Route(name.into())),
    })
}

async fn check(
    client: &mut HandoffServiceClient<Channel>,
    route_name: &str,
    language: &str,
) -> CheckAvailabilityResponse {
    client
        .check_availability(CheckAvailabilityRequest {
            target: route(route_name),
            language: language.into(),
            intent: String::new(),
            ..Default::default()
        })
        .await
        .expect("check availability")
        .into_inner()
}

fn queue_name(attempt: Option<&TargetAttempt>) -> Option<String> {
    match attempt?.target.as_ref()?.kind.as_ref()? {
        pb::target::Kind::Queue(queue) => Some(queue.name.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn the_runtime_learns_before_creating_whether_and_when_a_human_is_there() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;

    let open = check(&mut client, "open", "en-US").await;
    assert!(open.open, "{open:?}");
    assert_eq!(queue_name(open.target.as_ref()).as_deref(), Some("agents"));
    assert_eq!(open.target.as_ref().map(|t| t.attempt), Some(1));
    assert_eq!(open.time_zone, "America/New_York");
    assert!(open.closes_at.is_some() && open.opens_at.is_none());
    assert!(open.customer_message.contains("connecting you"), "{open:?}");
    assert_eq!(open.closed_targets, 0);
    // The script connector does not report who is there, and the route
    // has no second target.
    assert_eq!(open.availability, None);
    assert_eq!(open.fallback, None);

    let closed = check(&mut client, "closed", "en-US").await;
    assert!(!closed.open && closed.target.is_none(), "{closed:?}");
    assert_eq!(closed.opens_at, None);
    assert_eq!(closed.closed_targets, 1);
    assert!(
        closed
            .customer_message
            .contains("no one can take your call")
    );

    let later = check(&mut client, "later", "es-MX").await;
    assert!(!later.open, "{later:?}");
    let opens_at = stack
        .later
        .at(10, 0, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .expect("instant")
        .timestamp()
        .as_second();
    assert_eq!(later.opens_at.map(|t| t.seconds), Some(opens_at));
    assert_eq!(later.time_zone, "UTC");
    assert_eq!(later.customer_message_language, "es");
    assert!(
        later.customer_message.contains("a las 10:00"),
        "{}",
        later.customer_message
    );

    // The configured Italian wording, with the opening as date and time
    // (no built-in Italian words for "tomorrow").
    let italian = check(&mut client, "later", "it-IT").await;
    assert_eq!(
        italian.customer_message,
        format!(
            "Siamo chiusi; riapriamo il {} 10:00. Possiamo richiamarla?",
            stack.later
        )
    );
    assert_eq!(italian.customer_message_language, "it-IT");

    let fallback = check(&mut client, "night-then-day", "en").await;
    assert!(fallback.open, "{fallback:?}");
    assert_eq!(queue_name(fallback.target.as_ref()).as_deref(), Some("day"));
    assert_eq!(fallback.closed_targets, 1);
    // Were the day queue not to take it, the backup would be tried next.
    assert_eq!(
        queue_name(fallback.fallback.as_ref()).as_deref(),
        Some("backup")
    );
    assert_eq!(fallback.fallback.as_ref().map(|t| t.attempt), Some(2));
}

#[tokio::test]
async fn create_leaves_closed_targets_out_and_refuses_when_all_are_closed() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let request = |request_id: &str, route_name: &str| CreateHandoffRequest {
        request_id: request_id.into(),
        conversation: Some(pb::Conversation {
            channel: pb::Channel::Voice as i32,
            language: "en-US".into(),
            call: None,
        }),
        context: Some(pb::HandoffContext {
            summary: "Charged twice".into(),
            ..Default::default()
        }),
        target: route(route_name),
        ..Default::default()
    };

    let refused = client
        .create_handoff(request("closed-1", "closed"))
        .await
        .expect_err("every target is closed");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(
        refused.get_details_error_info().map(|info| info.reason),
        Some("CLOSED".to_owned())
    );

    let later = client
        .create_handoff(request("later-1", "later"))
        .await
        .expect_err("closed until later");
    let retry = later
        .get_details_retry_info()
        .and_then(|info| info.retry_delay);
    assert!(
        retry.is_some(),
        "a closed route says when to retry: {later:?}"
    );

    let created = client
        .create_handoff(request("day-1", "night-then-day"))
        .await
        .expect("the day target is open")
        .into_inner()
        .handoff
        .expect("handoff");
    let events = watch_until(&mut client, &created.id, HandoffEventKind::TargetStarted).await;
    let started = events.last().and_then(|event| event.attempt.as_ref());
    assert_eq!(started.map(|a| a.attempt), Some(1));
    assert_eq!(queue_name(started).as_deref(), Some("day"));
}

#[tokio::test]
async fn bad_questions_are_invalid_arguments_naming_the_field() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let status = client
        .check_availability(CheckAvailabilityRequest {
            target: route("open"),
            language: "not a tag!".into(),
            intent: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("bad language");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["language"]);

    let status = client
        .check_availability(CheckAvailabilityRequest {
            target: route("nowhere"),
            language: String::new(),
            intent: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("unknown route");
    assert_eq!(bad_fields(&status), ["target.route"]);
}

/// CheckAvailability of the embedded queue's "support" queue.
async fn check_queue(
    client: &mut HandoffServiceClient<Channel>,
    language: &str,
) -> CheckAvailabilityResponse {
    client
        .check_availability(CheckAvailabilityRequest {
            target: Some(pb::Target {
                kind: Some(common::queue("support")),
            }),
            language: language.into(),
            ..Default::default()
        })
        .await
        .expect("check availability")
        .into_inner()
}

fn counts(
    answer: &CheckAvailabilityResponse,
) -> (Option<u32>, Option<u32>, Option<u32>, Option<u32>) {
    let a = answer
        .availability
        .as_ref()
        .expect("the queue reports availability");
    assert_eq!(a.basis(), pb::AvailabilityBasis::Exact, "{a:?}");
    (
        a.agents_signed_in,
        a.agents_available,
        a.contacts_waiting,
        a.position,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_queue_says_who_is_there_and_the_message_promises_its_wait()
-> anyhow::Result<()> {
    use baton_tests::desk::{self, Desk};
    let dir = tempfile::tempdir()?;
    let (queue, control) = desk::start_queue_and_control(dir.path(), "ann", "").await?;
    let mut client = baton_tests::handoff_client(&control).await;

    // Nobody signed in, no fallback: the AI must not promise a human.
    let nobody = check_queue(&mut client, "en").await;
    assert!(nobody.open, "{nobody:?}");
    assert_eq!(counts(&nobody), (Some(0), Some(0), Some(0), Some(1)));
    assert_eq!(
        nobody.availability.as_ref().and_then(|a| a.estimated_wait),
        None
    );
    assert!(
        nobody.customer_message.contains("No one is available"),
        "{nobody:?}"
    );

    // Ann is there and free: no wait, the usual promise.
    let ann = Desk::sign_in(&desk::desktop_base(&queue), "ann", "ann-pw").await?;
    ann.available().await?;
    let free = check_queue(&mut client, "en").await;
    assert_eq!(counts(&free), (Some(1), Some(1), Some(0), Some(1)));
    let wait = free.availability.as_ref().and_then(|a| a.estimated_wait);
    assert_eq!(wait.map(|w| (w.seconds, w.nanos)), Some((0, 0)));
    assert!(
        free.customer_message.contains("won't need to repeat"),
        "{free:?}"
    );
    assert!(!free.customer_message.contains("wait"), "{free:?}");

    // A customer takes her (the offer reserves her): the next one would
    // wait, and the message says for how long, in minutes rounded up.
    let mut request = baton_tests::sample_request("availability-1", common::queue("support"));
    request.timeout = Some(std::time::Duration::from_secs(300).try_into()?);
    let id = baton_tests::create_handoff(&mut client, request).await;
    watch_until(&mut client, &id, HandoffEventKind::Offered).await;
    let busy = check_queue(&mut client, "en").await;
    assert_eq!(counts(&busy), (Some(1), Some(0), Some(0), Some(1)));
    let availability = busy.availability.expect("availability");
    assert_eq!(
        availability.wait_estimate(),
        pb::WaitEstimateMethod::HandleTimes
    );
    let seconds = availability.estimated_wait.map_or(0, |w| w.seconds);
    assert!(seconds > 0, "{availability:?}");
    let minutes = (seconds as u64).div_ceil(60);
    let expected = if minutes == 1 {
        "The wait is about a minute.".to_owned()
    } else {
        format!("The wait is about {minutes} minutes.")
    };
    assert!(
        busy.customer_message.ends_with(&expected),
        "{expected:?} in {busy:?}"
    );
    let spanish = check_queue(&mut client, "es-MX").await;
    assert!(
        spanish.customer_message.contains("La espera es de"),
        "{spanish:?}"
    );

    // Asking queued nobody: the queue still holds only the one customer.
    let again = check_queue(&mut client, "en").await;
    assert_eq!(counts(&again), counts(&busy));
    drop(ann);
    Ok(())
}
