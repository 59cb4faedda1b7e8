//! Scenario 2, time to first ring: from CreateHandoff to the human's phone
//! (sipp) receiving the INVITE, through the control service (durable
//! SQLite) and the SIP connector in this process; and the calls per second
//! the SIP connector sustains.
//!
//! The baseline is sipp calling the same phone directly: the floor of the
//! SIP path on this machine. Both sides are timed from sipp's own message
//! logs (the phone's receive time of each INVITE against the send time of
//! the CreateHandoff, or of the caller sipp's INVITE), matched by
//! `X-Baton-Handoff-Id` or Call-ID. The phone answers 486 so that each
//! handoff ends at once.
//!
//! The call rate is measured twice: through the control service (each
//! handoff's durable commits included), and of the SIP connector alone,
//! driven over its own contract (StartTransfer) as the control service
//! drives it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use baton_conformance::requests;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::handoff::v1::WatchHandoffRequest;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::types::v1 as pb;
use baton_tests::sipp::Sipp;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Scale;
use crate::api::{connect, control_config_with, each_on_tasks, serve_control, unique};
use crate::payload::create_request;
use crate::report::Table;

const SCENARIO: &str = "first ring";
/// Handoffs one after another, for the latency.
const SEQUENTIAL: usize = 200;
/// Handoffs in the rate run, and how many at once.
const BURST: usize = 1_000;
const CONCURRENCY: usize = 32;
const PHONE: &str = include_str!("../scenarios/busy_phone.xml");
const CALLER: &str = include_str!("../scenarios/caller.xml");
/// How long one sipp may take for all its calls.
const SIPP_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let phone_scenario = dir.join("busy_phone.xml");
    let caller_scenario = dir.join("caller.xml");
    std::fs::write(&phone_scenario, PHONE)?;
    std::fs::write(&caller_scenario, CALLER)?;
    eprintln!("first ring: starting the SIP connector and the control service");
    let stop = CancellationToken::new();
    let (control, sip) = start_stack(dir, &stop).await?;
    let client = HandoffServiceClient::new(connect(control, 1).await?.remove(0));
    let sequential = scale.count(SEQUENTIAL);
    let burst = scale.count(BURST);

    // Warm up: connections, the store, the SIP stack.
    let phone = start_phone(dir, &phone_scenario, "warm", 20)?;
    handoffs(&client, &phone, 20, 1).await?;
    finish(phone).await?;

    let phone = start_phone(dir, &phone_scenario, "floor-seq", sequential)?;
    let caller = start_caller(dir, &caller_scenario, "floor-seq", &phone, sequential, 1)?;
    let called = finish(caller).await?;
    let rang = finish(phone).await?;
    let mut floor = deltas(&called.invites_by("Call-ID"), &rang.invites_by("Call-ID"));

    let phone = start_phone(dir, &phone_scenario, "baton-seq", sequential)?;
    let sent = handoffs(&client, &phone, sequential, 1).await?;
    let rang = finish(phone).await?;
    let mut baton = deltas(&sent, &rang.invites_by("X-Baton-Handoff-Id"));
    if baton.len() < sequential {
        eprintln!(
            "first ring: {} of {sequential} INVITEs matched",
            baton.len()
        );
    }
    table.add_p50_p99(
        SCENARIO,
        "CreateHandoff to INVITE at the phone",
        &mut baton,
        "sipp calling sipp",
        &mut floor,
    );

    let phone = start_phone(dir, &phone_scenario, "floor-rate", burst)?;
    let caller = start_caller(
        dir,
        &caller_scenario,
        "floor-rate",
        &phone,
        burst,
        CONCURRENCY,
    )?;
    finish(caller).await?;
    let floor_rate = finish(phone).await?.invite_rate()?;
    let phone = start_phone(dir, &phone_scenario, "baton-rate", burst)?;
    let cpu = cpu_time()?;
    handoffs(&client, &phone, burst, CONCURRENCY).await?;
    let baton_cpu = (cpu_time()? - cpu) / burst as f64;
    let baton_rate = finish(phone).await?.invite_rate()?;
    let phone = start_phone(dir, &phone_scenario, "connector-rate", burst)?;
    let cpu = cpu_time()?;
    transfers(sip, &phone, burst, CONCURRENCY).await?;
    let connector_cpu = (cpu_time()? - cpu) / burst as f64;
    let connector_rate = finish(phone).await?.invite_rate()?;
    let floor_label = format!("sipp to sipp calls/s, c={CONCURRENCY}");
    table.add(
        SCENARIO,
        format!("handoffs to SIP calls/s, c={CONCURRENCY}"),
        baton_rate,
        floor_label.clone(),
        floor_rate,
        "/s",
    );
    table.add(
        SCENARIO,
        format!("SIP connector alone calls/s, c={CONCURRENCY}"),
        connector_rate,
        floor_label,
        floor_rate,
        "/s",
    );
    table.add(
        SCENARIO,
        "CPU time per handoff to SIP (this process)",
        baton_cpu,
        "per SIP connector transfer alone",
        connector_cpu,
        "ms",
    );
    stop.cancel();
    Ok(())
}

/// The CPU time this process has used (user and system, every thread), in
/// milliseconds, from /proc/self/stat (clock ticks of 10 ms: runs of a
/// second or more keep the error near 1%).
pub fn cpu_time() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc/self/stat without a command")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks * 10.0)
}

/// `count` handoffs to `phone` from `concurrency` tasks, each followed to
/// its end; the time each CreateHandoff was sent, by handoff id.
async fn handoffs(
    client: &HandoffServiceClient<Channel>,
    phone: &Sipp,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<HashMap<String, SystemTime>> {
    let prefix = unique("ring");
    let uri = phone.uri("agent");
    let client = client.clone();
    let sent = each_on_tasks(count, concurrency, move |index| {
        let mut client = client.clone();
        let mut request = create_request(format!("{prefix}-{index}"), "unused");
        request.target = Some(pb::Target {
            kind: Some(pb::target::Kind::SipUri(uri.clone())),
        });
        async move {
            let at = SystemTime::now();
            let id = client
                .create_handoff(request)
                .await?
                .into_inner()
                .handoff
                .context("CreateHandoff answered no handoff")?
                .id;
            let mut events = client
                .watch_handoff(WatchHandoffRequest {
                    handoff_id: id.clone(),
                    after_sequence: 0,
                })
                .await?
                .into_inner();
            // The stream ends after the terminal event.
            tokio::time::timeout(Duration::from_secs(20), async {
                while events.next().await.is_some() {}
            })
            .await
            .context("a handoff did not end within 20 s")?;
            Ok((id, at))
        }
    })
    .await?;
    Ok(sent.into_iter().collect())
}

/// `count` transfers to `phone` sent straight to the SIP connector at
/// `sip` from `concurrency` tasks, each stream read to its end.
async fn transfers(
    sip: SocketAddr,
    phone: &Sipp,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let channel = Channel::from_shared(format!("http://{sip}"))?
        .connect()
        .await?;
    let client = ConnectorServiceClient::new(channel);
    let prefix = unique("transfer");
    let uri = phone.uri("agent");
    each_on_tasks(count, concurrency, move |index| {
        let mut client = client.clone();
        let handoff_id = format!("{prefix}-{index}");
        let request = requests::start_request(
            &handoff_id,
            1,
            pb::target::Kind::SipUri(uri.clone()),
            pb::TransferMode::Warm,
            requests::envelope(&handoff_id, &[], None),
            SystemTime::now() + Duration::from_secs(20),
        );
        async move {
            let mut events = client.start_transfer(request).await?.into_inner();
            // The stream ends after the terminal event.
            tokio::time::timeout(Duration::from_secs(20), async {
                while events.next().await.is_some() {}
            })
            .await
            .context("a transfer did not end within 20 s")?;
            Ok(())
        }
    })
    .await?;
    Ok(())
}

/// The time from each send to the phone's receipt, for the keys both have.
fn deltas(
    sent: &HashMap<String, SystemTime>,
    received: &HashMap<String, SystemTime>,
) -> Vec<Duration> {
    sent.iter()
        .filter_map(|(key, at)| received.get(key)?.duration_since(*at).ok())
        .collect()
}

/// The messages of a finished sipp's log.
struct Messages(Vec<(SystemTime, bool, String)>);

/// sipp as the human's phone, for `calls` calls; its logs in `dir`.
fn start_phone(dir: &Path, scenario: &Path, name: &str, calls: usize) -> anyhow::Result<Sipp> {
    Sipp::play(scenario)
        .calls(calls)
        .timeout(SIPP_TIMEOUT)
        .logs_in(dir)
        .named(&format!("phone-{name}"))
        .try_start()
}

/// sipp calling `phone` `calls` times, `concurrency` calls at a time.
fn start_caller(
    dir: &Path,
    scenario: &Path,
    name: &str,
    phone: &Sipp,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<Sipp> {
    Sipp::play(scenario)
        .calls(calls)
        .timeout(SIPP_TIMEOUT)
        .logs_in(dir)
        .named(&format!("caller-{name}"))
        .args([
            phone.addr().to_string(),
            "-l".into(),
            concurrency.to_string(),
            "-r".into(),
            "10000".into(),
        ])
        .try_start()
}

/// Waits for sipp to end and reads its message log.
async fn finish(sipp: Sipp) -> anyhow::Result<Messages> {
    parse_log(&sipp.finish().await?)
}

impl Messages {
    /// When each INVITE was sent or received, by the value of `header`.
    fn invites_by(&self, header: &str) -> HashMap<String, SystemTime> {
        let prefix = format!("{}:", header.to_ascii_lowercase());
        self.0
            .iter()
            .filter(|(_, _, text)| text.starts_with("INVITE "))
            .filter_map(|(at, _, text)| {
                let value = text.lines().find_map(|line| {
                    line.to_ascii_lowercase()
                        .starts_with(&prefix)
                        .then(|| line[prefix.len()..].trim().to_owned())
                })?;
                Some((value, *at))
            })
            .collect()
    }

    /// INVITEs received per second, from the first to the last.
    fn invite_rate(&self) -> anyhow::Result<f64> {
        let times: Vec<SystemTime> = self
            .0
            .iter()
            .filter(|(_, received, text)| *received && text.starts_with("INVITE "))
            .map(|(at, _, _)| *at)
            .collect();
        let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
            bail!("the phone received no INVITE");
        };
        let span = last.duration_since(*first)?.as_secs_f64();
        Ok((times.len() - 1) as f64 / span.max(1e-6))
    }
}

/// sipp's `-trace_msg` log: entries headed by a dashed line with the date
/// and time, then "UDP message received|sent …", a blank line and the
/// message.
fn parse_log(text: &str) -> anyhow::Result<Messages> {
    let mut messages = Vec::new();
    for entry in text
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = entry.splitn(3, '\n');
        let stamp = lines.next().unwrap_or_default().trim();
        let direction = lines.next().unwrap_or_default();
        let body = lines.next().unwrap_or_default().trim_start().to_owned();
        let at = parse_stamp(stamp).with_context(|| format!("sipp log time {stamp:?}"))?;
        messages.push((at, direction.contains("received"), body));
    }
    Ok(Messages(messages))
}

/// "2026-11-25 04:03:13.895466" (UTC) as a SystemTime.
fn parse_stamp(stamp: &str) -> Option<SystemTime> {
    let (date, time) = stamp.split_once(' ')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (clock, micros) = time.split_once('.')?;
    let mut clock = clock.split(':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock.next()?.ok()?,
        clock.next()?.ok()?,
        clock.next()?.ok()?,
    );
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(seconds).ok()?)
            + Duration::from_micros(micros.parse().ok()?),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The SIP connector and the control service sending SIP URI targets to
/// it, in this process until `stop`; the gRPC addresses of the control
/// service and of the SIP connector.
async fn start_stack(
    dir: &Path,
    stop: &CancellationToken,
) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let sip_config = baton_connector_sip::SipConfig::ephemeral();
    let sip = baton_connector_sip::bind(sip_config).await?;
    let sip_addr = sip.grpc_addr;
    tokio::spawn(sip.serve(stop.clone().cancelled_owned()));

    let mut config = control_config_with(&dir.join("control"), "sip", sip_addr)?;
    config.default_connectors.sip_uri = Some("sip".into());
    let control_addr = serve_control(config, stop).await?;
    Ok((control_addr, sip_addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_log_times_are_read_as_utc() {
        let at = parse_stamp("2026-11-25 04:03:13.895466").expect("a time");
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970");
        assert_eq!(since.as_secs(), 1_795_579_393);
        assert_eq!(since.subsec_micros(), 895_466);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn a_log_entry_gives_its_time_direction_and_headers() {
        let log = "----------------------------------------------- 2026-11-25 04:03:13.895466\n\
                   UDP message received [310] bytes :\n\n\
                   INVITE sip:agent@127.0.0.1:15070 SIP/2.0\n\
                   Call-ID: 1-21312@127.0.0.1\n\
                   X-Baton-Handoff-Id: h-1\n\n\n\
                   ----------------------------------------------- 2026-11-25 04:03:13.895683\n\
                   UDP message sent (255 bytes):\n\n\
                   SIP/2.0 486 Busy Here\n";
        let messages = parse_log(log).expect("parses");
        assert_eq!(messages.0.len(), 2);
        assert!(messages.0[0].1 && !messages.0[1].1);
        let by_call = messages.invites_by("Call-ID");
        assert!(by_call.contains_key("1-21312@127.0.0.1"));
        let by_handoff = messages.invites_by("X-Baton-Handoff-Id");
        assert_eq!(by_handoff.len(), 1);
        assert!(by_handoff.contains_key("h-1"));
    }
}
