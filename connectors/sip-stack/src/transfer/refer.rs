//! The REFER to the caller's gateway (RFC 3515, with Target-Dialog of RFC
//! 4538) and its implicit subscription: the REFER's final response, the
//! NOTIFYs of the subscription, the notify timeout and the human hanging up
//! are inputs of the transfer's progress, which alone says when it ended.

use baton_sip_transfer::Input;
use rsip::Method;
use rsip::prelude::*;
use tokio::sync::oneshot;

use super::context::{Destination, call_reference, trace_context};
use super::invite::answer_challenge;
use super::{Flow, Held, Run, Transfers};
use crate::leg::Leg;
use crate::message::{self, HeaderLines};
use crate::origin::{self, Expected};
use crate::stack::random_token;

impl Transfers {
    /// Sends the REFER (warm: with Replaces for the human's answered leg
    /// in `held`) and follows it until the transfer ends. Its NOTIFYs are
    /// taken only from the gateway (or the proxy the REFER went through)
    /// and in the subscription's dialog.
    pub(super) async fn refer(
        &self,
        run: &mut Run<'_>,
        held: &mut Held,
        destination: &Destination,
    ) -> Flow {
        let stack = &self.stack;
        let call = call_reference(run.transfer);
        let gateway = call.sip_gateway_uri.as_str();
        let refer_to = self.refer_target(
            run.transfer,
            held.dialog.as_ref(),
            destination,
            run.hand_back.as_deref(),
        );
        let subscription = run.progress.subscription().clone();
        let referring = Leg::Referring {
            refer_call_id: subscription.call_id.clone(),
            dialog: held.dialog.clone(),
            refer_tag: Some(subscription.tag.clone()),
        };
        self.hold(run.transfer, run.events, referring).await;
        if !message::is_safe_uri(gateway) || rsip::Uri::try_from(gateway).is_err() {
            let detail = "the caller's gateway URI is not a valid SIP URI";
            return run.step(Input::Unsent { detail }, held).await;
        }
        let branch = format!("z9hG4bK{}", random_token());
        let own = stack.own_uri();
        let to = match stack.resolve(gateway).await {
            Ok(to) => to,
            Err(error) => {
                let detail = error.to_string();
                return run.step(Input::Unsent { detail: &detail }, held).await;
            }
        };
        let mut lines: HeaderLines = vec![
            ("Via".into(), stack.via(&branch, to.transport)),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), format!("<{own}>;tag={}", subscription.tag)),
            ("To".into(), format!("<{gateway}>")),
            ("Call-ID".into(), subscription.call_id.clone()),
            ("CSeq".into(), "1 REFER".into()),
            ("Contact".into(), stack.contact(to.transport)),
            ("Refer-To".into(), format!("<{refer_to}>")),
            ("Referred-By".into(), format!("<{own}>")),
        ];
        if !call.sip_call_id.is_empty() {
            // RFC 4538: the gateway's tag is local, the customer's remote.
            lines.push((
                "Target-Dialog".into(),
                format!(
                    "{};local-tag={};remote-tag={}",
                    message::sanitize(&call.sip_call_id, 256),
                    message::sanitize(&call.sip_to_tag, 128),
                    message::sanitize(&call.sip_from_tag, 128)
                ),
            ));
        }
        lines.push(("Supported".into(), "tdialog, replaces".into()));
        lines.extend(trace_context());
        lines.push((
            "User-Agent".into(),
            format!("baton-connector-sip/{}", env!("CARGO_PKG_VERSION")),
        ));
        // Listen for the NOTIFYs before the REFER leaves: they may overtake the 202.
        let expected = Expected {
            local_tag: subscription.tag.clone(),
            remote_tag: None,
            peers: origin::peers_for(gateway, Some(to)).await,
        };
        let mut notifies = stack.register_dialog(&subscription.call_id, Some(expected));
        let refer = {
            let stack = stack.clone();
            let credentials = self.config.credentials_for(gateway);
            let gateway = gateway.to_owned();
            async move {
                let response = stack
                    .non_invite(Method::Refer, &gateway, &lines, &branch, b"", to)
                    .await?;
                let code = response.status_code.code();
                let answer = match (&credentials, code) {
                    (Some((username, password)), 401 | 407) => {
                        answer_challenge(&response, username, password, &Method::Refer, &gateway)
                    }
                    _ => None,
                };
                let Some(answer) = answer else {
                    return Ok(response);
                };
                // Once more, authenticated: a new transaction, the next CSeq.
                let branch = format!("z9hG4bK{}", random_token());
                let mut lines: HeaderLines = lines
                    .into_iter()
                    .map(|(name, value)| match name.as_str() {
                        "Via" => (name, stack.via(&branch, to.transport)),
                        "CSeq" => (name, "2 REFER".to_owned()),
                        _ => (name, value),
                    })
                    .collect();
                lines.push(answer);
                stack
                    .non_invite(Method::Refer, &gateway, &lines, &branch, b"", to)
                    .await
            }
        };
        tokio::pin!(refer);
        let deadline = tokio::time::sleep(self.config.notify_timeout);
        tokio::pin!(deadline);
        let mut hang_up = held.hung_up.take();
        loop {
            let flow = tokio::select! {
                result = &mut refer, if run.progress.awaits_refer_response() => match result {
                    Ok(response) => {
                        let status = response.status_code.code();
                        run.step(Input::ReferResponse { status }, held).await
                    }
                    Err(error) => {
                        let detail = error.to_string();
                        run.step(Input::Unsent { detail: &detail }, held).await
                    }
                },
                request = notifies.receiver.recv() => {
                    let Some(request) = request else { continue };
                    if request.method != Method::Notify {
                        continue;
                    }
                    let call_id = request
                        .call_id_header()
                        .map(|header| header.value().to_owned())
                        .unwrap_or_default();
                    let to_tag = request
                        .to_header()
                        .ok()
                        .and_then(|to| to.tag().ok().flatten())
                        .map(|tag| tag.to_string());
                    let notify = Input::Notify {
                        call_id: &call_id,
                        to_tag: to_tag.as_deref(),
                        body: &request.body,
                    };
                    run.step(notify, held).await
                }
                () = &mut deadline => run.step(Input::NotifyTimedOut, held).await,
                by_human = hung_up(&mut hang_up) => {
                    hang_up = None;
                    if by_human {
                        run.step(Input::HumanHungUp, held).await
                    } else {
                        Flow::Wait
                    }
                }
            };
            if !matches!(flow, Flow::Wait) {
                return flow;
            }
        }
    }
}

/// Whether the human's phone hung up the answered leg (false when the leg
/// was forgotten otherwise); never, while nothing is watched.
pub(super) async fn hung_up(watch: &mut Option<oneshot::Receiver<()>>) -> bool {
    match watch {
        Some(receiver) => receiver.await.is_ok(),
        None => std::future::pending().await,
    }
}
