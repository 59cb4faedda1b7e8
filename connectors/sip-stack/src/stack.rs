//! The connector's SIP endpoint on UDP and TCP (one port for both), and
//! TLS ([`crate::tls`], with `sip.tls`): a
//! receive path that routes responses to client transactions (by Via branch
//! and CSeq method) and in-dialog requests to the transfer that owns the
//! Call-ID, and RFC 3261 client transactions with their timers:
//! retransmission on UDP (A for INVITE, E for the rest), time-outs on both
//! (B, F).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rsip::prelude::*;
use rsip::{Method, SipMessage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

pub use crate::config::Transport;
use crate::hand_back::HandBacks;
use crate::message::{self, HeaderLines, MAX_MESSAGE_BYTES};
use crate::origin::{self, Expected};
use crate::reply_cache::ReplyCache;
use crate::tls::SipTls;

/// Where a message goes: an address and a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl Transport {
    fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// The default bound of the replies kept for retransmitted requests
/// (`sip.reply_cache_bytes`).
pub const REPLY_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The most finished INVITE transactions remembered, so that a
/// retransmitted final response from the peer is acknowledged again.
const MAX_FINISHED_INVITES: usize = 1024;

/// The methods the connector takes (RFC 3261 20.5): in the INVITEs it sends
/// and in every 405.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, NOTIFY, OPTIONS";

/// RFC 3261 T2: the cap of non-INVITE retransmission intervals.
const T2: Duration = Duration::from_secs(4);

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("no response within {0:?} (timer B/F)")]
    Timeout(Duration),
    #[error("cannot send: {0}")]
    Transport(#[from] std::io::Error),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot build the request: {0}")]
    Build(String),
    /// TLS was asked for and could not be had; nothing was sent in clear.
    #[error("{0}")]
    Tls(String),
}

/// An answered leg: its Call-ID, what its BYE must carry, and who hears
/// of the BYE.
type AnsweredCall = (String, Expected, oneshot::Sender<()>);

/// Listeners by key, each with what a message must satisfy to reach it.
type Listeners<K, T> = Mutex<HashMap<String, (K, mpsc::UnboundedSender<T>)>>;

/// The SIP endpoint shared by every transfer.
#[derive(Debug)]
pub struct SipStack {
    socket: UdpSocket,
    /// Taken by `run`, which accepts on it.
    tcp_listener: Mutex<Option<TcpListener>>,
    /// Writers of the open TCP connections, by peer address.
    connections: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>,
    default_transport: Transport,
    local: SocketAddr,
    /// `host:port` written in Via and Contact.
    advertised: String,
    user: String,
    t1: Duration,
    outbound_proxy: Option<String>,
    /// Client transactions, with the peer the request went to: the only
    /// address their responses are taken from.
    transactions: Listeners<Peer, rsip::Response>,
    /// In-dialog requests by Call-ID, with the dialog's tags and peers
    /// (`None`: a REFER noted by an older version, matched by Call-ID).
    dialogs: Listeners<Option<Expected>, rsip::Request>,
    /// The legs we placed and the human answered, by Call-ID with their
    /// dialog: their BYE (the phone hanging up our leg once Replaces took
    /// it) gets a 200 and is told to the transfer through the sender.
    answered_calls: Mutex<std::collections::VecDeque<AnsweredCall>>,
    /// Responses sent, by server transaction, for retransmitted requests.
    answered_requests: Mutex<ReplyCache>,
    /// INVITE transactions that ended (key, peer, when): a retransmitted
    /// final response from that peer is acknowledged again.
    finished_invites: Mutex<std::collections::VecDeque<(String, Peer, tokio::time::Instant)>>,
    /// SIP over TLS, when `sip.tls` is configured ([`Self::enable_tls`]).
    tls: OnceLock<Arc<SipTls>>,
    /// The transfers' hand-back addresses, which out-of-dialog INVITEs
    /// may name.
    hand_backs: Arc<HandBacks>,
}

/// A registration that ends when dropped, so that an abandoned transfer
/// leaves nothing behind.
pub struct Registration<T> {
    pub receiver: mpsc::UnboundedReceiver<T>,
    key: String,
    stack: Arc<SipStack>,
    dialog: bool,
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        if self.dialog {
            lock(&self.stack.dialogs).remove(&self.key);
        } else if let Some((peer, _)) = lock(&self.stack.transactions).remove(&self.key)
            && self.key.ends_with(" INVITE")
        {
            self.stack.finished_invite(&self.key, peer);
        }
    }
}

fn lock<K, T>(
    map: &Listeners<K, T>,
) -> std::sync::MutexGuard<'_, HashMap<String, (K, mpsc::UnboundedSender<T>)>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new random token for branches, tags and Call-IDs.
pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl SipStack {
    /// Binds the SIP socket and listener, UDP and TCP on one port (port 0
    /// picks a port free for both).
    pub async fn bind(
        bind: SocketAddr,
        default_transport: Transport,
        public_address: Option<String>,
        user: String,
        t1: Duration,
        outbound_proxy: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let (socket, listener) = bind_both(bind).await?;
        let local = socket.local_addr()?;
        Ok(Arc::new(Self {
            socket,
            tcp_listener: Mutex::new(Some(listener)),
            connections: Mutex::new(HashMap::new()),
            default_transport,
            local,
            advertised: public_address.unwrap_or_else(|| local.to_string()),
            user,
            t1,
            outbound_proxy,
            transactions: Mutex::new(HashMap::new()),
            dialogs: Mutex::new(HashMap::new()),
            answered_calls: Mutex::new(std::collections::VecDeque::new()),
            answered_requests: Mutex::new(ReplyCache::new(t1 * 64, REPLY_CACHE_BYTES)),
            finished_invites: Mutex::new(std::collections::VecDeque::new()),
            tls: OnceLock::new(),
            hand_backs: Arc::default(),
        }))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Adds TLS (before `run`); without it, TLS targets fail.
    pub fn enable_tls(&self, tls: Arc<SipTls>) {
        let _ = self.tls.set(tls);
    }

    pub fn tls(&self) -> Option<&Arc<SipTls>> {
        self.tls.get()
    }

    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// The hand-back addresses this endpoint answers.
    pub fn hand_backs(&self) -> &Arc<HandBacks> {
        &self.hand_backs
    }

    /// Bounds the replies kept for retransmitted requests to `bytes`
    /// (`sip.reply_cache_bytes`); before `run`.
    pub fn limit_reply_cache(&self, bytes: usize) {
        *self
            .answered_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = ReplyCache::new(self.t1 * 64, bytes);
    }

    /// The bytes of replies kept for retransmitted requests.
    pub fn reply_cache_bytes(&self) -> usize {
        self.answered_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes()
    }

    /// The connector's own URI, e.g. `sip:baton@127.0.0.1:5062`.
    pub fn own_uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.advertised)
    }

    /// The Contact URI for requests sent over `transport`, so that the peer
    /// sends its in-dialog requests back the same way.
    pub fn contact(&self, transport: Transport) -> String {
        match (transport, self.tls.get()) {
            (Transport::Udp, _) => format!("<{}>", self.own_uri()),
            (Transport::Tcp, _) => format!("<{};transport=tcp>", self.own_uri()),
            // RFC 3261 8.1.1.8: a sips: Contact, so that the peer's
            // in-dialog requests come back over TLS too.
            (Transport::Tls, Some(tls)) => format!("<sips:{}@{}>", self.user, tls.sent_by()),
            (Transport::Tls, None) => format!("<sips:{}@{}>", self.user, self.advertised),
        }
    }

    /// The host and port of the connector, for From URIs of trunk calls.
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    pub fn via(&self, branch: &str, transport: Transport) -> String {
        let sent_by = match (transport, self.tls.get()) {
            (Transport::Tls, Some(tls)) => tls.sent_by(),
            _ => &self.advertised,
        };
        format!(
            "SIP/2.0/{} {sent_by};branch={branch};rport",
            transport.via_name(),
        )
    }

    /// Receives on UDP and accepts TCP (and TLS) connections; run it as a
    /// task.
    pub async fn run(self: Arc<Self>) {
        if let Some(tls) = self.tls.get() {
            tokio::spawn(tls.clone().accept(self.clone()));
        }
        let listener = self
            .tcp_listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(listener) = listener {
            let stack = self.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            stack.clone().attach(stream, peer);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "SIP TCP accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        self.receive_udp().await;
    }

    /// Serves one TCP connection (see [`Self::serve_stream`]), known by
    /// its peer's address for the messages sent to it.
    fn attach(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> mpsc::UnboundedSender<Vec<u8>> {
        let stack = self.clone();
        let sender = self.clone().serve_stream(stream, peer, move |closed| {
            let mut connections = stack.connections_lock();
            if connections
                .get(&peer)
                .is_some_and(|open| open.same_channel(closed))
            {
                connections.remove(&peer);
            }
        });
        self.connections_lock().insert(peer, sender.clone());
        sender
    }

    /// Serves one stream connection (TCP, or TLS from [`crate::tls`]): a
    /// writer task fed by the channel returned, and a reader that frames
    /// messages by Content-Length and handles them as datagrams are
    /// handled, replying on the connection. The connection closes on an
    /// oversize or unframeable message; `on_close` is then called with the
    /// writer that was returned.
    pub(crate) fn serve_stream<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        on_close: impl FnOnce(&mpsc::UnboundedSender<Vec<u8>>) + Send + 'static,
    ) -> mpsc::UnboundedSender<Vec<u8>>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (sender, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                // TLS holds written records until flushed.
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
        });
        let replies = sender.clone();
        tokio::spawn(async move {
            let mut buffer: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            'connection: loop {
                let length = match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(length) => length,
                };
                buffer.extend_from_slice(&chunk[..length]);
                loop {
                    match message::frame(&buffer) {
                        message::Frame::Incomplete => break,
                        message::Frame::Invalid(reason) => {
                            tracing::debug!(%peer, reason, "SIP TCP connection closed");
                            break 'connection;
                        }
                        message::Frame::KeepAlive(length) => {
                            buffer.drain(..length);
                        }
                        message::Frame::Message(length) => {
                            let bytes: Vec<u8> = buffer.drain(..length).collect();
                            if let Some((reply, _)) = self.handle_datagram(&bytes, peer) {
                                let _ = replies.send(reply);
                            }
                        }
                    }
                }
            }
            on_close(&replies);
        });
        sender
    }

    fn connections_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn receive_udp(&self) {
        // One byte more than the limit, so that an oversize datagram shows.
        let mut buffer = vec![0u8; MAX_MESSAGE_BYTES + 1];
        loop {
            let (length, from) = match self.socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) => {
                    // ICMP port unreachable surfaces here on some systems;
                    // it concerns one peer, not the socket.
                    tracing::debug!(%error, "SIP receive error");
                    continue;
                }
            };
            if let Some((reply, to)) = self.handle_datagram(&buffer[..length], from) {
                let _ = self.socket.send_to(&reply, to).await;
            }
        }
    }

    /// Handles one incoming datagram: routes it, and returns the reply to
    /// send, if any. Never panics on any input (see the fuzz test).
    pub fn handle_datagram(&self, bytes: &[u8], from: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
        let message = match message::parse(bytes) {
            Ok(message) => message,
            Err(message::ParseError::Empty) => return None,
            Err(error) => {
                tracing::debug!(%from, %error, "SIP datagram dropped");
                return None;
            }
        };
        match message {
            SipMessage::Response(response) => self.handle_response(response, from),
            SipMessage::Request(request) => self.handle_request(request, from),
        }
    }

    fn handle_response(
        &self,
        response: rsip::Response,
        from: SocketAddr,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let branch = response.transaction_id().ok()??.to_string();
        let method = response.cseq_header().ok()?.method().ok()?;
        let key = transaction_key(&branch, &method);
        let listener = lock(&self.transactions)
            .get(&key)
            .map(|(peer, sender)| (*peer, sender.clone()));
        if let Some((peer, sender)) = listener {
            if !origin::is_from(&peer, from) {
                // Someone who read the request answers in the peer's name.
                tracing::warn!(%from, expected = %peer.addr, %method, "SIP response from an address the request did not go to; dropped");
                return None;
            }
            if sender.send(response.clone()).is_ok() {
                return None;
            }
        }
        // A final response to an INVITE nobody waits for any more (a
        // retransmission, or the 487 after a CANCEL): acknowledge it so that
        // the far end stops retransmitting; only to the peer the INVITE went
        // to, never to whoever copies its headers.
        if method != Method::Invite || response.status_code.code() < 200 {
            return None;
        }
        if !self.was_invited(&key, from) {
            tracing::debug!(%from, "final response to no INVITE of ours from there; dropped");
            return None;
        }
        let ack = stray_ack(&response, self)?;
        Some((ack, from))
    }

    /// Server transactions (RFC 3261 17.2), kept simple: a request is
    /// handled once, and its retransmissions (same branch and method) get
    /// the same response again without being handled twice.
    fn handle_request(
        &self,
        request: rsip::Request,
        from: SocketAddr,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        if request.method == Method::Ack {
            return None;
        }
        let key = transaction_key(
            &request.transaction_id().ok()??.to_string(),
            &request.method,
        );
        let now = tokio::time::Instant::now();
        {
            let answered = self
                .answered_requests
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(reply) = answered.get(&key, now) {
                return Some((reply.to_vec(), from));
            }
        }
        let (reply, to) = self.handle_new_request(request, from)?;
        self.answered_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, reply.clone(), now);
        Some((reply, to))
    }

    fn handle_new_request(
        &self,
        request: rsip::Request,
        from: SocketAddr,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let method = request.method;
        let call_id = request.call_id_header().ok()?.value().to_owned();
        let in_dialog = matches!(request.to_header().ok()?.tag(), Ok(Some(_)));
        let local_tag = random_token();
        let reply_with = |code: u16, reason: &str, extra: &[(String, String)]| {
            Some((
                message::render_response_with(&request, code, reason, &local_tag, extra),
                from,
            ))
        };
        let reply = |code: u16, reason: &str| {
            let allow: HeaderLines = if code == 405 {
                vec![("Allow".into(), ALLOW.into())]
            } else {
                Vec::new()
            };
            reply_with(code, reason, &allow)
        };
        let dialog_unknown = || reply(481, "Call/Transaction Does Not Exist");
        if !in_dialog {
            // RFC 3261 8.2.1: a method the connector does not take out of
            // a dialog (REGISTER, MESSAGE, SUBSCRIBE…) is not one for a
            // dialog that does not exist.
            return match method {
                Method::Options => reply(200, "OK"),
                // The connector places calls; the only ones it takes are
                // a customer handed back, which it redirects to the runtime.
                Method::Invite => match self.hand_backs.answer(&request) {
                    Some(answer) => reply_with(answer.code, answer.reason, &answer.headers),
                    None => reply(603, "Decline"),
                },
                Method::Cancel | Method::Bye | Method::Notify => dialog_unknown(),
                _ => reply(405, "Method Not Allowed"),
            };
        }
        let sender = {
            let mut dialogs = lock(&self.dialogs);
            match dialogs.get_mut(&call_id) {
                None => None,
                Some((expected, sender)) => {
                    if let Some(expected) = expected
                        && let Err(refusal) = expected.admit(&request, from)
                    {
                        tracing::warn!(%from, %method, ?refusal, "SIP request outside the dialog it names; refused");
                        return dialog_unknown();
                    }
                    Some(sender.clone())
                }
            }
        };
        let Some(sender) = sender else {
            if method == Method::Bye && self.forget_answered_by(&call_id, &request, from) {
                return reply(200, "OK");
            }
            return dialog_unknown();
        };
        let answer = match method {
            Method::Notify | Method::Bye | Method::Info => reply(200, "OK"),
            Method::Invite => reply(488, "Not Acceptable Here"),
            Method::Cancel => dialog_unknown(),
            _ => reply(405, "Method Not Allowed"),
        };
        let _ = sender.send(request);
        answer
    }

    /// Remembers an answered leg (its Call-ID, and the tags and peers its
    /// BYE must come with) so that its BYE is accepted later; the receiver
    /// hears of that BYE (and closes when the leg is forgotten otherwise).
    /// Bounded: the oldest are forgotten first.
    pub fn remember_answered(&self, call_id: &str, expected: Expected) -> oneshot::Receiver<()> {
        const KEEP: usize = 10_000;
        let mut calls = self
            .answered_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if calls.len() >= KEEP {
            calls.pop_front();
        }
        let (hung_up, hears) = oneshot::channel();
        calls.push_back((call_id.to_owned(), expected, hung_up));
        hears
    }

    /// Forgets an answered leg; returns whether it was known.
    pub fn forget_answered(&self, call_id: &str) -> bool {
        let mut calls = self
            .answered_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match calls.iter().position(|(c, _, _)| c == call_id) {
            Some(index) => {
                calls.remove(index);
                true
            }
            None => false,
        }
    }

    /// Forgets the answered leg a BYE from `from` hangs up, if the BYE is
    /// in that dialog and from its peer; returns whether it was.
    fn forget_answered_by(&self, call_id: &str, bye: &rsip::Request, from: SocketAddr) -> bool {
        let mut calls = self
            .answered_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(index) = calls.iter().position(|(c, _, _)| c == call_id) else {
            return false;
        };
        if let Err(refusal) = calls[index].1.admit(bye, from) {
            tracing::warn!(%from, ?refusal, "BYE outside the answered leg it names; refused");
            return false;
        }
        if let Some((_, _, hung_up)) = calls.remove(index) {
            let _ = hung_up.send(());
        }
        true
    }

    /// Notes that the INVITE transaction `key` to `peer` ended.
    fn finished_invite(&self, key: &str, peer: Peer) {
        let now = tokio::time::Instant::now();
        let keep = self.t1 * 64;
        let mut finished = self
            .finished_invites
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while finished
            .front()
            .is_some_and(|(_, _, at)| now.saturating_duration_since(*at) >= keep)
            || finished.len() >= MAX_FINISHED_INVITES
        {
            finished.pop_front();
        }
        finished.push_back((key.to_owned(), peer, now));
    }

    /// Whether the INVITE transaction `key` went to the peer at `from`.
    fn was_invited(&self, key: &str, from: SocketAddr) -> bool {
        let keep = self.t1 * 64;
        let now = tokio::time::Instant::now();
        self.finished_invites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(k, peer, at)| {
                k == key && origin::is_from(peer, from) && now.saturating_duration_since(*at) < keep
            })
    }

    /// Registers for the responses of the transaction `branch`, `method`
    /// (a CANCEL shares its INVITE's branch: RFC 3261 17.1.3), sent to
    /// `peer`: responses from anywhere else are dropped.
    pub fn register_transaction(
        self: &Arc<Self>,
        branch: &str,
        method: &Method,
        peer: Peer,
    ) -> Registration<rsip::Response> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let key = transaction_key(branch, method);
        lock(&self.transactions).insert(key.clone(), (peer, sender));
        Registration {
            receiver,
            key,
            stack: self.clone(),
            dialog: false,
        }
    }

    /// Registers for the requests (NOTIFY, BYE) of the dialog of `call_id`
    /// that carry `expected`'s tags and come from its peers (`None`: any
    /// request with the Call-ID, for a REFER noted by an older version).
    pub fn register_dialog(
        self: &Arc<Self>,
        call_id: &str,
        expected: Option<Expected>,
    ) -> Registration<rsip::Request> {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.dialogs).insert(call_id.to_owned(), (expected, sender));
        Registration {
            receiver,
            key: call_id.to_owned(),
            stack: self.clone(),
            dialog: true,
        }
    }

    /// Sends one message; over TCP, on the open connection to the peer or
    /// a new one.
    pub async fn send(self: &Arc<Self>, bytes: &[u8], to: Peer) -> Result<(), SipError> {
        match to.transport {
            Transport::Udp => {
                self.socket.send_to(bytes, to.addr).await?;
            }
            Transport::Tcp => {
                let open = self.connections_lock().get(&to.addr).cloned();
                let sender = match open {
                    Some(sender) if !sender.is_closed() => sender,
                    _ => {
                        let stream =
                            tokio::time::timeout(self.t1 * 64, TcpStream::connect(to.addr))
                                .await
                                .map_err(|_| SipError::Timeout(self.t1 * 64))??;
                        self.clone().attach(stream, to.addr)
                    }
                };
                sender.send(bytes.to_vec()).map_err(|_| {
                    SipError::Transport(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "TCP connection closed",
                    ))
                })?;
            }
            Transport::Tls => {
                let tls = self.tls.get().ok_or_else(tls_not_configured)?;
                tls.send(self, bytes, to.addr).await?;
            }
        }
        Ok(())
    }

    /// Where to send a request for `uri`: the outbound proxy if configured,
    /// else the URI's host and port (5060 by default), over the URI's
    /// `transport` parameter or the default transport.
    pub async fn resolve(&self, uri: &str) -> Result<Peer, SipError> {
        // A Route value is a name-addr; a Request-URI keeps its parameters
        // (`;transport=tcp`).
        let bare = if uri.contains('<') {
            message::addr_uri(uri)
        } else {
            uri.trim()
        };
        let parsed =
            rsip::Uri::try_from(bare).map_err(|e| SipError::Resolve(format!("{uri}: {e}")))?;
        let transport = if parsed.scheme == Some(rsip::Scheme::Sips) {
            // RFC 3261 26.2: sips: is TLS on every hop, whatever else it says.
            Transport::Tls
        } else {
            parsed
                .params
                .iter()
                .find_map(|param| match param {
                    rsip::Param::Transport(rsip::Transport::Tcp) => Some(Transport::Tcp),
                    rsip::Param::Transport(rsip::Transport::Udp) => Some(Transport::Udp),
                    rsip::Param::Transport(rsip::Transport::Tls) => Some(Transport::Tls),
                    _ => None,
                })
                .unwrap_or(self.default_transport)
        };
        let tls = match transport {
            Transport::Tls => Some(self.tls.get().ok_or_else(tls_not_configured)?),
            Transport::Udp | Transport::Tcp => None,
        };
        let target = match &self.outbound_proxy {
            Some(proxy) => proxy.clone(),
            None => {
                let host = parsed.host_with_port;
                match host.port {
                    Some(port) => format!("{}:{}", host.host, port),
                    None => format!("{}:{}", host.host, transport.default_port()),
                }
            }
        };
        let mut addresses = tokio::net::lookup_host(target.as_str())
            .await
            .map_err(|e| SipError::Resolve(format!("{target}: {e}")))?;
        let first = addresses.next();
        let addr = first.ok_or_else(|| SipError::Resolve(target.clone()))?;
        if let Some(tls) = tls {
            tls.remember_name(addr, crate::tls::host_of(&target));
        }
        Ok(Peer { addr, transport })
    }

    /// A non-INVITE client transaction (RFC 3261 17.1.2): retransmits per
    /// timer E (UDP only) until a final response, gives up after timer F.
    pub async fn non_invite(
        self: &Arc<Self>,
        method: Method,
        uri: &str,
        lines: &HeaderLines,
        branch: &str,
        body: &[u8],
        to: Peer,
    ) -> Result<rsip::Response, SipError> {
        let bytes = message::render_request(method, uri, lines, body).map_err(SipError::Build)?;
        let mut registration = self.register_transaction(branch, &method, to);
        let timer_f = self.t1 * 64;
        let give_up = tokio::time::sleep(timer_f);
        tokio::pin!(give_up);
        let mut interval = self.t1;
        self.send(&bytes, to).await?;
        loop {
            tokio::select! {
                response = registration.receiver.recv() => {
                    let Some(response) = response else { return Err(SipError::Timeout(timer_f)) };
                    if response.status_code.code() >= 200 {
                        return Ok(response);
                    }
                    // Provisional: keep retransmitting, but only every T2.
                    interval = T2;
                }
                () = tokio::time::sleep(interval), if to.transport == Transport::Udp => {
                    self.send(&bytes, to).await?;
                    interval = (interval * 2).min(T2);
                }
                () = &mut give_up => return Err(SipError::Timeout(timer_f)),
            }
        }
    }
}

/// Binds UDP and TCP on the same port. With port 0 the UDP port is chosen
/// first; if TCP cannot have it, another pair is tried.
async fn bind_both(bind: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..10 {
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind SIP on udp {bind}: {e}"))?;
        let local = socket.local_addr()?;
        match TcpListener::bind(local).await {
            Ok(listener) => return Ok((socket, listener)),
            Err(error) if bind.port() == 0 => last_error = Some(error),
            Err(error) => anyhow::bail!("cannot bind SIP on tcp {local}: {error}"),
        }
    }
    anyhow::bail!(
        "cannot bind SIP on tcp next to udp: {}",
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )
}

fn tls_not_configured() -> SipError {
    SipError::Tls("TLS was asked for (sips: or transport=tls) and sip.tls is not configured".into())
}

fn transaction_key(branch: &str, method: &Method) -> String {
    format!("{branch} {method}")
}

/// The ACK for a final non-2xx (or a re-sent 2xx) INVITE response nobody
/// waits for: built from the response alone.
fn stray_ack(response: &rsip::Response, stack: &SipStack) -> Option<Vec<u8>> {
    let to = response.to_header().ok()?.value().to_owned();
    let uri = if response.status_code.code() < 300 {
        // A 2xx is acknowledged end to end, at the remote target.
        message::addr_uri(response.contact_header().ok()?.value()).to_owned()
    } else {
        message::addr_uri(&to).to_owned()
    };
    let branch = if response.status_code.code() < 300 {
        format!("z9hG4bK{}", random_token())
    } else {
        response.transaction_id().ok()??.to_string()
    };
    let cseq = response.cseq_header().ok()?.seq().ok()?;
    let transport = if response
        .via_header()
        .ok()?
        .value()
        .to_ascii_uppercase()
        .starts_with("SIP/2.0/TCP")
    {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let lines: HeaderLines = vec![
        ("Via".into(), stack.via(&branch, transport)),
        ("Max-Forwards".into(), "70".into()),
        (
            "From".into(),
            response.from_header().ok()?.value().to_owned(),
        ),
        ("To".into(), to),
        (
            "Call-ID".into(),
            response.call_id_header().ok()?.value().to_owned(),
        ),
        ("CSeq".into(), format!("{cseq} ACK")),
    ];
    message::render_request(Method::Ack, &uri, &lines, b"").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stack() -> Arc<SipStack> {
        SipStack::bind(
            "127.0.0.1:0".parse().expect("addr"),
            Transport::Udp,
            None,
            "baton".into(),
            Duration::from_millis(500),
            None,
        )
        .await
        .expect("binds")
    }

    #[tokio::test]
    async fn a_retransmitted_request_is_answered_again_but_handled_once() {
        let stack = stack().await;
        let from: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let mut dialog = stack.register_dialog("c-retransmit", None);
        let notify = "NOTIFY sip:baton@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKretransmit\r\nFrom: <sip:gw@127.0.0.1>;tag=1\r\nTo: <sip:baton@127.0.0.1>;tag=ours\r\nCall-ID: c-retransmit\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n";
        let (first, _) = stack
            .handle_datagram(notify.as_bytes(), from)
            .expect("answered");
        let (second, _) = stack
            .handle_datagram(notify.as_bytes(), from)
            .expect("answered again");
        assert!(String::from_utf8_lossy(&first).starts_with("SIP/2.0 200"));
        // The same reply both times: one server transaction.
        assert_eq!(first, second);
        assert!(dialog.receiver.try_recv().is_ok());
        assert!(dialog.receiver.try_recv().is_err(), "handled twice");
    }

    #[tokio::test]
    async fn the_humans_bye_on_an_answered_leg_is_told_to_its_transfer_once() {
        let stack = stack().await;
        let phone: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
        let expected = Expected {
            local_tag: "ours".into(),
            remote_tag: Some("theirs".into()),
            peers: vec![Peer {
                addr: phone,
                transport: Transport::Udp,
            }],
        };
        let bye = |branch: &str, to_tag: &str| {
            format!(
                "BYE sip:baton@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nFrom: <sip:human@127.0.0.1>;tag=theirs\r\nTo: <sip:baton@127.0.0.1>;tag={to_tag}\r\nCall-ID: c-answered\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let mut hung_up = stack.remember_answered("c-answered", expected.clone());
        // A BYE with another tag, or from elsewhere, is not the human's.
        let (reply, _) = stack
            .handle_datagram(bye("z9hG4bKforged", "other").as_bytes(), phone)
            .expect("answered");
        assert!(String::from_utf8_lossy(&reply).starts_with("SIP/2.0 481"));
        let elsewhere: SocketAddr = "127.0.0.1:5071".parse().expect("addr");
        stack.handle_datagram(bye("z9hG4bKelsewhere", "ours").as_bytes(), elsewhere);
        assert!(hung_up.try_recv().is_err(), "nothing told yet");
        let (reply, _) = stack
            .handle_datagram(bye("z9hG4bKbye", "ours").as_bytes(), phone)
            .expect("answered");
        assert!(String::from_utf8_lossy(&reply).starts_with("SIP/2.0 200"));
        assert_eq!(hung_up.try_recv(), Ok(()));

        // Our own BYE forgets the leg: its transfer hears no hang-up.
        let mut ours = stack.remember_answered("c-ours", expected);
        assert!(stack.forget_answered("c-ours"));
        assert_eq!(
            ours.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed)
        );
    }

    /// A fixed corpus of hostile input: garbage, truncations, oversize
    /// messages, header injection and huge numbers. Nothing may panic, and
    /// nothing malformed may be answered.
    #[tokio::test]
    async fn hostile_datagrams_never_panic() {
        let stack = stack().await;
        let from: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let valid = "NOTIFY sip:baton@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:gw@127.0.0.1>;tag=1\r\nTo: <sip:baton@127.0.0.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n";
        let mut corpus: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\r\n\r\n".to_vec(),
            b"SIP/2.0".to_vec(),
            b"SIP/2.0 200".to_vec(),
            b"SIP/2.0 999999999999 OK\r\n\r\n".to_vec(),
            b"INVITE  SIP/2.0\r\n\r\n".to_vec(),
            b"INVITE sip:a SIP/2.0\r\nVia: \r\nCSeq: 99999999999999999999 INVITE\r\n\r\n".to_vec(),
            b"\xff\xfe\xfd\x00\x01".to_vec(),
            vec![b'A'; MAX_MESSAGE_BYTES + 1],
            format!("{valid}{}", "x".repeat(MAX_MESSAGE_BYTES)).into_bytes(),
            valid.replace("CSeq: 1 NOTIFY", "CSeq: NOTIFY 1").into_bytes(),
            valid.replace("Call-ID: c1\r\n", "").into_bytes(),
            valid.replace("Via:", "Via:\r\n").into_bytes(),
            valid.replace("\r\n", "\n").into_bytes(),
            valid.replace("NOTIFY sip", "NOTIFY \u{0}sip").into_bytes(),
            "SIP/2.0 487 Request Terminated\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".as_bytes().to_vec(),
        ];
        // Every prefix of a valid message: truncation at every byte.
        for end in 0..valid.len() {
            corpus.push(valid.as_bytes()[..end].to_vec());
        }
        // Pseudo-random bytes from a fixed seed, and random bytes spliced
        // into the valid message.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let length = (next() % 600) as usize;
            corpus.push((0..length).map(|_| next() as u8).collect());
            let mut spliced = valid.as_bytes().to_vec();
            let at = (next() as usize) % spliced.len();
            spliced[at] = next() as u8;
            corpus.push(spliced);
        }
        for input in &corpus {
            let _ = stack.handle_datagram(input, from);
            // The TCP framing sees the same bytes, and never claims more
            // than it was given.
            match message::frame(input) {
                message::Frame::Message(length) | message::Frame::KeepAlive(length) => {
                    assert!(length <= input.len());
                }
                message::Frame::Incomplete | message::Frame::Invalid(_) => {}
            }
        }
        assert!(
            stack
                .handle_datagram(&vec![b'A'; MAX_MESSAGE_BYTES + 1], from)
                .is_none()
        );
        // The valid NOTIFY, for no dialog of ours, is answered 481.
        let (reply, _) = stack
            .handle_datagram(valid.as_bytes(), from)
            .expect("answered");
        assert!(String::from_utf8_lossy(&reply).starts_with("SIP/2.0 481"));
    }
}
