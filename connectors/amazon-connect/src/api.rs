//! The Amazon Connect API calls the connector makes, as restJson1 requests
//! built with reqwest and signed with AWS Signature Version 4 (the
//! `aws-sigv4` crate, the AWS SDK's own signer), each operation paced by its
//! own rate limit so that a burst of transfers queues instead of being
//! throttled.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use baton_connector_sdk::{FailureReason, Pacer, TransferEvents};
use baton_platform_http::{MAX_RESPONSE_BYTES, bounded_text, client, take_turn, transport_error};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ConnectConfig, Credentials};

/// How many times a request throttled anyway (429) is sent again.
const THROTTLE_RETRIES: u32 = 3;

/// The operations the connector calls; each has its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    DescribeContact,
    UpdateContactAttributes,
    TransferContact,
    DescribeQuickConnect,
    GetCurrentMetricData,
}

impl Operation {
    const ALL: [Operation; 5] = [
        Operation::DescribeContact,
        Operation::UpdateContactAttributes,
        Operation::TransferContact,
        Operation::DescribeQuickConnect,
        Operation::GetCurrentMetricData,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::DescribeContact => "DescribeContact",
            Self::UpdateContactAttributes => "UpdateContactAttributes",
            Self::TransferContact => "TransferContact",
            Self::DescribeQuickConnect => "DescribeQuickConnect",
            Self::GetCurrentMetricData => "GetCurrentMetricData",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Amazon Connect answered HTTP {status} {error_type}: {message}")]
    Refused {
        status: u16,
        error_type: String,
        message: String,
    },
    #[error("Amazon Connect could not be reached: {0}")]
    Transport(String),
}

impl ApiError {
    /// The AWS error type, e.g. `ResourceNotFoundException`.
    pub fn error_type(&self) -> &str {
        match self {
            Self::Refused { error_type, .. } => error_type,
            Self::Transport(_) => "",
        }
    }

    /// The transfer's failure reason.
    pub fn reason(&self) -> FailureReason {
        match self {
            // The contact, queue, user or flow is not there (or the contact
            // is no longer active): nobody can be reached this way.
            Self::Refused { error_type, .. }
                if error_type == "ResourceNotFoundException"
                    || error_type == "ContactNotFoundException" =>
            {
                FailureReason::Unreachable
            }
            Self::Refused { status, .. } if *status >= 500 || *status == 429 => {
                FailureReason::Unreachable
            }
            // Credentials, permissions, parameters: the connector's or its
            // configuration's fault.
            Self::Refused { .. } => FailureReason::ConnectorError,
            Self::Transport(_) => FailureReason::Unreachable,
        }
    }
}

/// What DescribeContact says about a contact (the parts the connector reads).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Contact {
    pub id: String,
    pub initial_contact_id: Option<String>,
    pub channel: String,
    pub queue_info: Option<QueueInfo>,
    pub agent_info: Option<AgentInfo>,
    pub disconnect_timestamp: Option<f64>,
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Contact {
    /// The id of the contact's first interaction, which holds the attributes.
    pub fn initial_id(&self) -> &str {
        self.initial_contact_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueueInfo {
    pub id: Option<String>,
    pub enqueue_timestamp: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentInfo {
    pub id: Option<String>,
    pub accepted_by_agent_timestamp: Option<f64>,
    pub connected_to_agent_timestamp: Option<f64>,
}

/// Where TransferContact sends a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Queue { queue_id: String, flow_id: String },
    User { user_id: String, flow_id: String },
}

/// A quick connect's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuickConnect {
    Transferable(Destination),
    /// PHONE_NUMBER or FLOW: TransferContact cannot use it.
    Other(String),
}

/// Real-time figures of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueMetrics {
    pub contacts_in_queue: Option<f64>,
    pub oldest_contact_age: Option<f64>,
    pub estimated_wait_time: Option<f64>,
}

/// Who is there in one queue for one channel, as GetCurrentMetricData
/// reports it: each figure unset when Connect gave no value for it (a null
/// value means it could not be computed; no result at all means Connect
/// has no data for the queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueAvailability {
    pub agents_online: Option<u32>,
    pub agents_available: Option<u32>,
    pub contacts_in_queue: Option<u32>,
    pub estimated_wait_seconds: Option<u32>,
}

/// A metric's value as a whole count or number of seconds: `None` for no
/// value; an error for anything a count cannot be.
fn whole(name: &str, value: &Value) -> Result<Option<u32>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let number = value
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0 && *n <= f64::from(u32::MAX))
        .ok_or_else(|| format!("{name} has the value {value}, not a count"))?;
    // Counts are whole; seconds may carry a fraction, rounded here.
    Ok(Some(number.round() as u32))
}

/// The figures of `queue_id` and `channel` in a GetCurrentMetricData
/// answer grouped by queue and channel.
pub fn read_queue_availability(
    answer: &Value,
    queue_id: &str,
    channel: &str,
) -> Result<QueueAvailability, String> {
    let results = answer["MetricResults"]
        .as_array()
        .ok_or("the answer has no MetricResults list")?;
    let mut figures = QueueAvailability::default();
    let Some(result) = results.iter().find(|r| {
        let dimensions = &r["Dimensions"];
        dimensions["Queue"]["Id"].as_str() == Some(queue_id)
            && dimensions["Channel"].as_str() == Some(channel)
    }) else {
        return Ok(figures);
    };
    let collections = result["Collections"]
        .as_array()
        .ok_or("the queue's result has no Collections list")?;
    for entry in collections {
        let name = entry["Metric"]["Name"]
            .as_str()
            .ok_or("a collection names no metric")?;
        let value = whole(name, &entry["Value"])?;
        match name {
            "AGENTS_ONLINE" => figures.agents_online = value,
            "AGENTS_AVAILABLE" => figures.agents_available = value,
            "CONTACTS_IN_QUEUE" => figures.contacts_in_queue = value,
            "ESTIMATED_WAIT_TIME" => figures.estimated_wait_seconds = value,
            _ => {}
        }
    }
    Ok(figures)
}

/// The signing headers (`x-amz-date`, `authorization`, and
/// `x-amz-security-token` for temporary credentials) for one request, as of
/// `time`. `headers` are the request's other headers, signed too.
pub fn sign_request(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "baton-connector-amazon-connect",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("connect")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// One instance's API.
#[derive(Debug)]
pub struct ConnectApi {
    client: reqwest::Client,
    base: reqwest::Url,
    region: String,
    instance_id: String,
    credentials: Credentials,
    pacers: Vec<Pacer>,
    rate_per_second: f64,
}

impl ConnectApi {
    pub fn new(config: &ConnectConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: client(concat!(
                "baton-connector-amazon-connect/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(config.request_timeout)
            .build()?,
            base: reqwest::Url::parse(&config.endpoint_url())?,
            region: config.region.clone(),
            instance_id: config.instance_id.clone(),
            credentials: config.credentials.clone(),
            // One request of the burst is kept in reserve: requests paced
            // exactly to the quota reach Amazon at slightly uneven times
            // (network, scheduling), and the reserve absorbs that instead
            // of a 429.
            pacers: Operation::ALL
                .iter()
                .map(|_| {
                    Pacer::new(
                        config.rate_per_second,
                        config.burst.saturating_sub(1).max(1),
                    )
                })
                .collect(),
            rate_per_second: config.rate_per_second,
        })
    }

    /// The URL of `segments` under the endpoint, each percent-encoded.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends one request when the operation's rate limit allows it (the
    /// wait reported as QUEUED on `events`), retrying a throttled one.
    async fn call(
        &self,
        operation: Operation,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<Value>,
        events: Option<&TransferEvents>,
    ) -> Result<Value, ApiError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let pacer = &self.pacers[operation.index()];
        let mut throttled = 0;
        loop {
            let limit = format!(
                "Amazon Connect's {} rate limit ({}/s)",
                operation.name(),
                self.rate_per_second
            );
            take_turn(pacer, events, &limit).await;
            let mut headers = vec![("content-type", "application/json")];
            if body.is_empty() {
                headers.clear();
            }
            let signing = sign_request(
                &self.credentials,
                &self.region,
                method.as_str(),
                url.as_str(),
                &headers,
                body.as_bytes(),
                SystemTime::now(),
            )
            .map_err(ApiError::Transport)?;
            let mut request = self.client.request(method.clone(), url.clone());
            for (name, value) in headers.iter().copied() {
                request = request.header(name, value);
            }
            for (name, value) in &signing {
                request = request.header(name, value);
            }
            if !body.is_empty() {
                request = request.body(body.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| ApiError::Transport(transport_error(e)))?;
            let status = response.status().as_u16();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                // The header may carry a namespace after a colon.
                .map(|v| v.split(':').next().unwrap_or(v).to_owned());
            let text = bounded_text(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(ApiError::Transport)?;
            if (200..300).contains(&status) {
                return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = parsed
                .get("Message")
                .or_else(|| parsed.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no error message")
                .to_owned();
            let error_type = error_type
                .or_else(|| {
                    parsed
                        .get("__type")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("HTTP {status}"));
            if status == 429 && throttled < THROTTLE_RETRIES {
                throttled += 1;
                tracing::warn!(
                    operation = operation.name(),
                    throttled,
                    "Amazon Connect throttled a request; retrying"
                );
                tokio::time::sleep(pacer.interval() * throttled).await;
                continue;
            }
            return Err(ApiError::Refused {
                status,
                error_type,
                message,
            });
        }
    }

    /// DescribeContact: `GET /contacts/{InstanceId}/{ContactId}`.
    pub async fn describe_contact(
        &self,
        contact_id: &str,
        events: Option<&TransferEvents>,
    ) -> Result<Contact, ApiError> {
        let url = self.url(&["contacts", &self.instance_id, contact_id]);
        let answer = self
            .call(
                Operation::DescribeContact,
                reqwest::Method::GET,
                url,
                None,
                events,
            )
            .await?;
        serde_json::from_value(answer.get("Contact").cloned().unwrap_or_default())
            .map_err(|e| ApiError::Transport(format!("an unreadable DescribeContact answer: {e}")))
    }

    /// UpdateContactAttributes: `POST /contact/attributes`.
    pub async fn update_contact_attributes(
        &self,
        initial_contact_id: &str,
        attributes: &BTreeMap<String, String>,
        events: Option<&TransferEvents>,
    ) -> Result<(), ApiError> {
        let url = self.url(&["contact", "attributes"]);
        let body = json!({
            "InstanceId": self.instance_id,
            "InitialContactId": initial_contact_id,
            "Attributes": attributes,
        });
        self.call(
            Operation::UpdateContactAttributes,
            reqwest::Method::POST,
            url,
            Some(body),
            events,
        )
        .await
        .map(drop)
    }

    /// TransferContact: `POST /contact/transfer`; returns the id of the
    /// transferred contact. `client_token` makes a repeat harmless.
    pub async fn transfer_contact(
        &self,
        contact_id: &str,
        destination: &Destination,
        client_token: &str,
        events: Option<&TransferEvents>,
    ) -> Result<String, ApiError> {
        let url = self.url(&["contact", "transfer"]);
        let mut body = json!({
            "InstanceId": self.instance_id,
            "ContactId": contact_id,
            "ClientToken": client_token,
        });
        match destination {
            Destination::Queue { queue_id, flow_id } => {
                body["QueueId"] = json!(queue_id);
                body["ContactFlowId"] = json!(flow_id);
            }
            Destination::User { user_id, flow_id } => {
                body["UserId"] = json!(user_id);
                body["ContactFlowId"] = json!(flow_id);
            }
        }
        let answer = self
            .call(
                Operation::TransferContact,
                reqwest::Method::POST,
                url,
                Some(body),
                events,
            )
            .await?;
        Ok(answer
            .get("ContactId")
            .and_then(Value::as_str)
            .unwrap_or(contact_id)
            .to_owned())
    }

    /// DescribeQuickConnect: `GET /quick-connects/{InstanceId}/{QuickConnectId}`.
    pub async fn describe_quick_connect(
        &self,
        quick_connect_id: &str,
        events: Option<&TransferEvents>,
    ) -> Result<QuickConnect, ApiError> {
        let url = self.url(&["quick-connects", &self.instance_id, quick_connect_id]);
        let answer = self
            .call(
                Operation::DescribeQuickConnect,
                reqwest::Method::GET,
                url,
                None,
                events,
            )
            .await?;
        let config = &answer["QuickConnect"]["QuickConnectConfig"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let kind = text(&config["QuickConnectType"]);
        Ok(match kind.as_str() {
            "QUEUE" => QuickConnect::Transferable(Destination::Queue {
                queue_id: text(&config["QueueConfig"]["QueueId"]),
                flow_id: text(&config["QueueConfig"]["ContactFlowId"]),
            }),
            "USER" => QuickConnect::Transferable(Destination::User {
                user_id: text(&config["UserConfig"]["UserId"]),
                flow_id: text(&config["UserConfig"]["ContactFlowId"]),
            }),
            _ => QuickConnect::Other(kind),
        })
    }

    /// GetCurrentMetricData for one queue and channel: contacts in queue,
    /// the oldest contact's age and the estimated wait, in seconds.
    pub async fn queue_metrics(
        &self,
        queue_id: &str,
        channel: &str,
    ) -> Result<QueueMetrics, ApiError> {
        let url = self.url(&["metrics", "current", &self.instance_id]);
        let mut filters = json!({ "Queues": [queue_id] });
        let mut metrics = vec![
            json!({"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"}),
            json!({"Name": "OLDEST_CONTACT_AGE", "Unit": "SECONDS"}),
        ];
        let mut groupings = vec!["QUEUE"];
        // The metrics API filters VOICE, CHAT and TASK only, and gives
        // ESTIMATED_WAIT_TIME only for queues and channels filtered and
        // grouped by both.
        if matches!(channel, "VOICE" | "CHAT" | "TASK") {
            filters["Channels"] = json!([channel]);
            groupings.push("CHANNEL");
            metrics.push(json!({"Name": "ESTIMATED_WAIT_TIME", "Unit": "SECONDS"}));
        }
        let body = json!({
            "Filters": filters,
            "Groupings": groupings,
            "CurrentMetrics": metrics,
        });
        let answer = self
            .call(
                Operation::GetCurrentMetricData,
                reqwest::Method::POST,
                url,
                Some(body),
                None,
            )
            .await?;
        let mut metrics = QueueMetrics::default();
        let results = answer["MetricResults"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for result in results
            .iter()
            .filter(|r| r["Dimensions"]["Queue"]["Id"].as_str() == Some(queue_id))
        {
            for entry in result["Collections"].as_array().into_iter().flatten() {
                let value = entry["Value"].as_f64();
                match entry["Metric"]["Name"].as_str() {
                    Some("CONTACTS_IN_QUEUE") => metrics.contacts_in_queue = value,
                    Some("OLDEST_CONTACT_AGE") => metrics.oldest_contact_age = value,
                    Some("ESTIMATED_WAIT_TIME") => metrics.estimated_wait_time = value,
                    _ => {}
                }
            }
        }
        Ok(metrics)
    }

    /// GetCurrentMetricData for one queue and channel (VOICE or CHAT): the
    /// agents online and available for it, the contacts in it and
    /// Connect's estimated wait, for GetAvailability. Shares the
    /// operation's rate limit with the transfers' queue figures.
    pub async fn queue_availability(
        &self,
        queue_id: &str,
        channel: &str,
    ) -> Result<QueueAvailability, ApiError> {
        let url = self.url(&["metrics", "current", &self.instance_id]);
        // ESTIMATED_WAIT_TIME is given only for queues and channels
        // filtered and grouped by both.
        let body = json!({
            "Filters": {"Queues": [queue_id], "Channels": [channel]},
            "Groupings": ["QUEUE", "CHANNEL"],
            "CurrentMetrics": [
                {"Name": "AGENTS_ONLINE", "Unit": "COUNT"},
                {"Name": "AGENTS_AVAILABLE", "Unit": "COUNT"},
                {"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"},
                {"Name": "ESTIMATED_WAIT_TIME", "Unit": "SECONDS"},
            ],
        });
        let answer = self
            .call(
                Operation::GetCurrentMetricData,
                reqwest::Method::POST,
                url,
                Some(body),
                None,
            )
            .await?;
        read_queue_availability(&answer, queue_id, channel).map_err(|reason| {
            ApiError::Transport(format!(
                "an unreadable GetCurrentMetricData answer: {reason}"
            ))
        })
    }

    /// How long the pacer of `operation` spaces requests at the steady rate.
    pub fn interval(&self, operation: Operation) -> Duration {
        self.pacers[operation.index()].interval()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_signed_for_connect_in_its_region() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session".into()),
        };
        let headers = sign_request(
            &credentials,
            "eu-west-2",
            "POST",
            "https://connect.eu-west-2.amazonaws.com/contact/transfer",
            &[("content-type", "application/json")],
            b"{}",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .expect("signs");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        assert_eq!(get("x-amz-security-token"), "session");
        let authorization = get("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-2/connect/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{authorization}"
        );
    }

    #[test]
    fn queue_figures_are_read_and_a_malformed_answer_is_an_error() {
        let answer = json!({"MetricResults": [
            {"Dimensions": {"Queue": {"Id": "q-other"}, "Channel": "VOICE"},
             "Collections": [{"Metric": {"Name": "AGENTS_ONLINE", "Unit": "COUNT"}, "Value": 9.0}]},
            {"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "CHAT"},
             "Collections": [{"Metric": {"Name": "AGENTS_ONLINE", "Unit": "COUNT"}, "Value": 8.0}]},
            {"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "VOICE"},
             "Collections": [
                {"Metric": {"Name": "AGENTS_ONLINE", "Unit": "COUNT"}, "Value": 4.0},
                {"Metric": {"Name": "AGENTS_AVAILABLE", "Unit": "COUNT"}, "Value": 0.0},
                {"Metric": {"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"}, "Value": 3.0},
                {"Metric": {"Name": "ESTIMATED_WAIT_TIME", "Unit": "SECONDS"}},
             ]},
        ]});
        assert_eq!(
            read_queue_availability(&answer, "q-1", "VOICE"),
            Ok(QueueAvailability {
                agents_online: Some(4),
                agents_available: Some(0),
                contacts_in_queue: Some(3),
                estimated_wait_seconds: None,
            })
        );
        assert_eq!(
            read_queue_availability(&json!({"MetricResults": []}), "q-1", "VOICE"),
            Ok(QueueAvailability::default())
        );
        for bad in [
            json!({}),
            json!({"MetricResults": [{"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "VOICE"}}]}),
            json!({"MetricResults": [{"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "VOICE"},
                   "Collections": [{"Metric": {"Name": "AGENTS_ONLINE"}, "Value": -1.0}]}]}),
            json!({"MetricResults": [{"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "VOICE"},
                   "Collections": [{"Metric": {"Name": "AGENTS_ONLINE"}, "Value": "4"}]}]}),
            json!({"MetricResults": [{"Dimensions": {"Queue": {"Id": "q-1"}, "Channel": "VOICE"},
                   "Collections": [{"Value": 4.0}]}]}),
        ] {
            assert!(
                read_queue_availability(&bad, "q-1", "VOICE").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn throttling_and_missing_resources_are_unreachable_credentials_are_the_connectors() {
        let refused = |status, error_type: &str| ApiError::Refused {
            status,
            error_type: error_type.into(),
            message: String::new(),
        };
        assert_eq!(
            refused(404, "ResourceNotFoundException").reason(),
            FailureReason::Unreachable
        );
        assert_eq!(
            refused(429, "ThrottlingException").reason(),
            FailureReason::Unreachable
        );
        assert_eq!(
            refused(403, "InvalidSignatureException").reason(),
            FailureReason::ConnectorError
        );
        assert_eq!(
            refused(400, "InvalidRequestException").reason(),
            FailureReason::ConnectorError
        );
    }
}
