//! The running queue shared by the connector (gRPC side) and the agent
//! desktop (HTTP side): the domain state behind one lock, saved after every
//! change, with a version counter that wakes every follower (transfer
//! streams and Server-Sent Event streams) when anything moves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_proto::connector::v1::ContextEnvelope;
use baton_proto::types::v1 as pb;
use serde::Serialize;
use tokio::sync::watch;

use crate::accounts::{Account, Accounts, Role};
use crate::config::{AgentConfig, QueueConfig};
use crate::domain::{
    Admitted, Agent, AgentProfile, AgentState, CallbackRequest, Contact, DeskError, Judgements,
    Media, Millis, NewContact, NotAdmitted, Phase, QueueAvailability, QueueKey, Queues, Standing,
    WithdrawalReason,
};
use crate::session::{Session, SessionRefused, Sessions, SignInMethod};
use crate::store::{AuditEntry, Store, StoreError};

pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a desktop request failed; mapped to an HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum DeskFailure {
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error("sign in first")]
    Unauthenticated,
    #[error("your session has ended; sign in again")]
    SessionEnded,
    #[error("wrong name or password")]
    WrongCredentials,
    #[error("too many failed sign-ins from this address; try again in {0:?}")]
    TooManyAttempts(Duration),
    #[error("sign-in is not available: no accounts are configured (desk.accounts_file)")]
    SignInUnavailable,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Inner {
    queues: Queues,
    store: Store,
    envelopes: HashMap<String, ContextEnvelope>,
    /// The W3C `traceparent` of each contact's transfer, handed to the
    /// desktop with the screen pop so that its spans join the handoff's
    /// trace. Not saved: a trace does not outlive the process's spans.
    traces: HashMap<String, String>,
    /// The desktop sessions; saved, so that desktops reconnect after a
    /// restart.
    sessions: Sessions,
    /// When restored contacts still held (no transfer re-attached) are
    /// withdrawn; None once done.
    reattach_deadline: Option<Millis>,
    /// When the store was last probed with a write.
    probed: Instant,
    /// The accounts file, looked at before every request: a removed
    /// account's sessions end at once.
    accounts_watch: Option<crate::account_watch::AccountsWatch>,
}

/// The queue, its desktop sessions and the change notifications.
pub struct Desk {
    inner: Mutex<Inner>,
    /// What was disclosed of each handoff, for the supervisor's view.
    pub disclosures: crate::disclosures::Disclosures,
    /// The chat conversations of chat transfers.
    pub chats: crate::chat::Chats,
    version: watch::Sender<u64>,
    closing: watch::Sender<bool>,
    known_agents: BTreeMap<String, AgentConfig>,
    accounts_file: Option<PathBuf>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").finish_non_exhaustive()
    }
}

impl Inner {
    /// Records an ended contact's handle time and its wrap-up (a
    /// hand-back's too).
    fn record_ended(
        &mut self,
        agent: &str,
        handoff_id: &str,
        disposition: &str,
        notes: &str,
        handled: Duration,
        now: Millis,
    ) -> Result<(), DeskFailure> {
        if let Some(contact) = self.queues.contact(handoff_id).cloned() {
            self.store
                .record_handle_time(&QueueKey::of(&contact), handled.as_millis() as u64)?;
            self.store
                .record_wrap_up(&contact, agent, disposition, notes, now)?;
        }
        Ok(())
    }
}

impl Desk {
    pub fn open(config: &QueueConfig) -> Result<Arc<Self>, StoreError> {
        let data_dir = config
            .store
            .required_data_dir()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let store = Store::open(data_dir)?;
        let saved = store.load()?;
        let mut queues = Queues::new(config.policy(), config.queues.iter().cloned());
        let mut envelopes = HashMap::new();
        let mut contacts = Vec::new();
        for (contact, envelope) in saved.contacts {
            envelopes.insert(contact.handoff_id.clone(), envelope);
            contacts.push(contact);
        }
        // Restored contacts are held (never offered) until the control
        // service re-attaches their transfer: while this connector was away
        // it may have moved the customer to a fallback target. Ones it does
        // not re-attach within the grace period were given up.
        queues.restore(
            saved.agents,
            contacts,
            saved.handle_times,
            saved.withdrawals,
        );
        let sessions = Sessions::new(config.desk.session_limits(), saved.sessions);
        // With local accounts turned off, passwords sign nobody in.
        let accounts_file = config
            .desk
            .accounts_file
            .clone()
            .filter(|_| config.desk.local_accounts);
        if accounts_file.is_none() && config.desk.oidc.is_none() {
            tracing::warn!(
                "desk.accounts_file is not set: nobody can sign in to the agent desktop \
                 (baton desk account add creates accounts)"
            );
        }
        if config.allow_self_sign_in {
            tracing::warn!(
                "allow_self_sign_in no longer has an effect: every sign-in needs an account \
                 in desk.accounts_file"
            );
        }
        let reattach_deadline = now_millis() + config.reattach_grace.as_millis() as u64;
        tracing::info!(
            agents = queues.agents().count(),
            contacts = queues.contacts().count(),
            held = queues.contacts().filter(|c| c.is_held()).count(),
            "queue state loaded"
        );
        Ok(Arc::new(Self {
            disclosures: Default::default(),
            chats: Default::default(),
            inner: Mutex::new(Inner {
                queues,
                store,
                envelopes,
                traces: HashMap::new(),
                sessions,
                reattach_deadline: Some(reattach_deadline),
                probed: Instant::now(),
                accounts_watch: accounts_file
                    .as_deref()
                    .map(crate::account_watch::AccountsWatch::new),
            }),
            version: watch::channel(0).0,
            closing: watch::channel(false).0,
            known_agents: config
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.clone()))
                .collect(),
            accounts_file,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes, saves and wakes followers after a change.
    fn commit(&self, inner: &mut Inner) {
        inner.queues.route(now_millis());
        let Inner { queues, store, .. } = inner;
        if let Err(error) = store.save(queues.agents(), queues.contacts()) {
            // The in-memory queue keeps working; only a restart would lose
            // the change.
            tracing::error!(%error, "cannot save the queue state");
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// True once the desktop shuts down: event streams end.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// `None` while the store saves every change, else why it cannot: the
    /// connector reports NOT_SERVING meanwhile, so that the control
    /// service routes elsewhere.
    pub fn store_failing(&self) -> watch::Receiver<Option<String>> {
        self.lock().store.failing()
    }

    /// Moves time forward: offer time-outs and maximum waits; probes the
    /// store with a write every [`PROBE_EVERY`].
    pub fn tick(&self) {
        let mut inner = self.lock();
        if inner.probed.elapsed() >= PROBE_EVERY {
            inner.probed = Instant::now();
            let failing = inner.store.is_failing();
            // Back from a failure: save what could not be saved then.
            if inner.store.probe().is_ok() && failing {
                self.commit(&mut inner);
            }
        }
        self.withdraw_orphans(&mut inner, now_millis());
        self.end_expired_sessions(&mut inner, now_millis());
        self.end_outdated_sessions(&mut inner, now_millis());
        let before = (
            inner.queues.contacts().cloned().collect::<Vec<_>>(),
            inner.queues.agents().cloned().collect::<Vec<_>>(),
        );
        inner.queues.route(now_millis());
        let after = (
            inner.queues.contacts().cloned().collect::<Vec<_>>(),
            inner.queues.agents().cloned().collect::<Vec<_>>(),
        );
        if before != after {
            self.commit(&mut inner);
        }
    }

    /// Forgets sessions past their idle or absolute limit; an agent with
    /// no session left is signed out (and their offer goes to another).
    fn end_expired_sessions(&self, inner: &mut Inner, now: Millis) {
        let expired = inner.sessions.expire(now);
        self.ended(inner, expired, now, "desktop session expired");
    }

    /// Ends the password sessions whose account left the accounts file or
    /// changed role or tenants, when the file changed.
    fn end_outdated_sessions(&self, inner: &mut Inner, now: Millis) {
        let Some(accounts) = inner.accounts_watch.as_mut().and_then(|w| w.changed()) else {
            return;
        };
        let outdated = inner
            .sessions
            .end_where(|s| crate::account_watch::outdated(s, &accounts));
        self.ended(
            inner,
            outdated,
            now,
            "desktop session ended: its account changed or was removed",
        );
    }

    /// Forgets sessions that ended; an agent with no session left is
    /// signed out.
    fn ended(&self, inner: &mut Inner, ended: Vec<(String, Session)>, now: Millis, why: &str) {
        if ended.is_empty() {
            return;
        }
        let hashes: Vec<String> = ended.iter().map(|(hash, _)| hash.clone()).collect();
        if let Err(error) = inner.store.delete_sessions(&hashes) {
            tracing::error!(%error, "cannot forget the ended sessions");
        }
        for (_, session) in ended {
            tracing::info!(account = %session.account, "{why}");
            if session.role == Role::Agent && !inner.sessions.has_account(&session.account, now) {
                let _ = inner.queues.sign_out(&session.account, now);
            }
        }
        self.commit(inner);
    }

    fn withdraw_orphans(&self, inner: &mut Inner, now: Millis) {
        if inner
            .reattach_deadline
            .is_none_or(|deadline| now < deadline)
        {
            return;
        }
        inner.reattach_deadline = None;
        let withdrawn = inner.queues.withdraw_held(now);
        for contact in &withdrawn {
            let handoff_id = &contact.handoff_id;
            tracing::warn!(%handoff_id, "no transfer resumed this restored contact; withdrawn");
            self.forget(inner, handoff_id);
        }
        if !withdrawn.is_empty() {
            self.commit(inner);
        }
    }

    /// Remembers a withdrawal across restarts and, when the contact left,
    /// drops what the desk keeps beside it.
    fn forget(&self, inner: &mut Inner, handoff_id: &str) {
        if inner.queues.contact(handoff_id).is_none() {
            inner.envelopes.remove(handoff_id);
            inner.traces.remove(handoff_id);
        }
        if let Some(withdrawal) = inner.queues.withdrawal(handoff_id).copied()
            && let Err(error) = inner.store.record_withdrawal(handoff_id, &withdrawal)
        {
            tracing::error!(%error, "cannot save the withdrawal");
        }
    }

    // ---- the connector's side ----

    /// Queues a transfer's contact; see [`Queues::enqueue`] for a handoff
    /// already here (a re-attach releases a restored contact's hold).
    pub fn enqueue(
        &self,
        new: NewContact,
        envelope: ContextEnvelope,
    ) -> Result<Admitted, NotAdmitted> {
        let mut inner = self.lock();
        let handoff_id = new.handoff_id.clone();
        let attempt = new.attempt;
        let admitted = inner.queues.enqueue(new, now_millis())?;
        match admitted {
            Admitted::New => {}
            Admitted::Reattached => {
                tracing::info!(%handoff_id, attempt, "transfer re-attached to its contact")
            }
            Admitted::TookOver { from_attempt } => {
                tracing::info!(%handoff_id, attempt, from_attempt, "a later attempt takes over the contact")
            }
        }
        if admitted == Admitted::New {
            if let Err(error) = inner.store.save_envelope(&handoff_id, &envelope) {
                tracing::error!(%error, "cannot save the context");
            }
            if let Some(traceparent) = baton_service_kit::telemetry::current_traceparent() {
                inner.traces.insert(handoff_id.clone(), traceparent);
            }
            inner.envelopes.insert(handoff_id, envelope);
        }
        self.commit(&mut inner);
        Ok(admitted)
    }

    /// Who is there for a contact in `tenant`'s queue `name` now (see
    /// [`Queues::availability`]); None when the tenant has no such queue.
    pub fn availability(
        &self,
        tenant: &str,
        name: &str,
        skills: &[String],
        media: Media,
    ) -> Option<QueueAvailability> {
        self.lock().queues.availability(tenant, name, skills, media)
    }

    /// The contact's phase and, while it waits, its standing.
    pub fn contact_status(&self, handoff_id: &str) -> Option<ContactStatus> {
        let inner = self.lock();
        let contact = inner.queues.contact(handoff_id)?;
        let agent_name = match &contact.phase {
            Phase::Offered { agent, .. }
            | Phase::Connected { agent, .. }
            | Phase::Completed { agent, .. } => inner
                .queues
                .agent(agent)
                .map_or_else(|| agent.clone(), |a| a.name.clone()),
            _ => String::new(),
        };
        Some(ContactStatus {
            attempt: contact.attempt,
            phase: contact.phase.clone(),
            standing: inner.queues.standing(handoff_id),
            agent_name,
            callback: contact.callback.clone(),
        })
    }

    /// The agent the contact is connected to (its chat's only reader).
    pub fn connected_agent(&self, handoff_id: &str) -> Option<String> {
        match &self.lock().queues.contact(handoff_id)?.phase {
            Phase::Connected { agent, .. } => Some(agent.clone()),
            _ => None,
        }
    }

    /// The tenant whose contact this is, while the queue has it.
    pub fn contact_tenant(&self, handoff_id: &str) -> Option<String> {
        Some(self.lock().queues.contact(handoff_id)?.tenant.clone())
    }

    /// The contact address (SIP URI or number) of the agent the contact is
    /// connected to: where its voice leg goes.
    pub fn connected_agent_contact(&self, handoff_id: &str) -> Option<String> {
        let inner = self.lock();
        match &inner.queues.contact(handoff_id)?.phase {
            Phase::Connected { agent, .. } => inner.queues.agent(agent).map(|a| a.contact.clone()),
            _ => None,
        }
    }

    /// The transfer `attempt` of a handoff ended (cancelled, or its
    /// deadline passed): its contact leaves the queue at once, whatever
    /// its phase (held, waiting, offered, connected: the agent is freed; a
    /// callback and its number included), and that attempt is never queued
    /// again. A contact a later attempt took over stays.
    pub fn release(&self, handoff_id: &str, attempt: u32) {
        let mut inner = self.lock();
        let now = now_millis();
        let withdrawn =
            inner
                .queues
                .withdraw(handoff_id, attempt, WithdrawalReason::Cancelled, now);
        if withdrawn.is_some() {
            tracing::info!(%handoff_id, attempt, "transfer cancelled; contact withdrawn");
        }
        self.forget(&mut inner, handoff_id);
        self.commit(&mut inner);
    }

    /// Forgets a contact whose outcome was reported, or that was cancelled.
    pub fn remove(&self, handoff_id: &str) {
        let mut inner = self.lock();
        if inner.queues.remove(handoff_id, now_millis()).is_some() {
            inner.envelopes.remove(handoff_id);
            inner.traces.remove(handoff_id);
            self.commit(&mut inner);
        }
    }

    // ---- the desktop's side ----

    /// Checks the name and password against the accounts file (read
    /// again now, so that added or changed accounts count at once) and
    /// starts a session. Slow on purpose (argon2): call it off the async
    /// threads.
    pub fn sign_in(&self, request: &SignIn) -> Result<SignedIn, DeskFailure> {
        let path = self
            .accounts_file
            .as_ref()
            .ok_or(DeskFailure::SignInUnavailable)?;
        let accounts = Accounts::load(path).map_err(|error| {
            tracing::error!(%error, "cannot read the desk accounts");
            DeskFailure::SignInUnavailable
        })?;
        let account = accounts
            .verify(&request.name, &request.password)
            .ok_or(DeskFailure::WrongCredentials)?;
        self.open_session(account)
    }

    /// Starts a session for an account whose password was checked. An
    /// agent is signed in to the queue with the account's tenant, and the
    /// skills and contact of the account, else of the `agents` config.
    pub fn open_session(&self, account: &Account) -> Result<SignedIn, DeskFailure> {
        self.open_session_via(account, SignInMethod::Password)
    }

    /// Starts a session for an account that signed in by `via`.
    pub fn open_session_via(
        &self,
        account: &Account,
        via: SignInMethod,
    ) -> Result<SignedIn, DeskFailure> {
        let now = now_millis();
        let known = self.known_agents.get(&account.name);
        let display_name = account
            .display_name
            .clone()
            .or_else(|| known.and_then(|k| k.name.clone()))
            .unwrap_or_else(|| account.name.clone());
        let session = Session {
            account: account.name.clone(),
            role: account.role,
            tenants: account.tenants.clone(),
            created: now,
            last_seen: now,
            via,
        };
        let mut inner = self.lock();
        let (id, hash) = inner.sessions.create(session.clone());
        inner.store.save_session(&hash, &session)?;
        if account.role == Role::Agent {
            let skills = if account.skills.is_empty() {
                known.map(|k| k.skills.clone()).unwrap_or_default()
            } else {
                account.skills.clone()
            };
            let contact = if account.contact.is_empty() {
                known.map(|k| k.contact.clone()).unwrap_or_default()
            } else {
                account.contact.clone()
            };
            let profile = AgentProfile {
                name: display_name.clone(),
                tenant: account.tenants.first().cloned().unwrap_or_default(),
                skills: skills.into_iter().collect(),
                contact,
                chat_capacity: known.and_then(|k| k.chat_capacity),
            };
            inner.queues.sign_in(&account.name, profile, now);
        }
        self.commit(&mut inner);
        tracing::info!(account = %account.name, role = ?account.role, "signed in to the desktop");
        Ok(SignedIn {
            session_id: id,
            name: account.name.clone(),
            display_name,
            role: account.role,
            tenants: account.tenants.clone(),
        })
    }

    /// The name the desktop shows for an account: the signed-in agent's,
    /// else the `agents` config's.
    pub fn display_name(&self, account: &str) -> Option<String> {
        let from_queue = self.lock().queues.agent(account).map(|a| a.name.clone());
        from_queue.or_else(|| self.known_agents.get(account).and_then(|k| k.name.clone()))
    }

    /// The live session of `id`, its last use moved to now.
    pub fn session(&self, id: &str) -> Result<Session, DeskFailure> {
        let mut inner = self.lock();
        let now = now_millis();
        self.end_outdated_sessions(&mut inner, now);
        match inner.sessions.touch(id, now) {
            Ok((session, save)) => {
                if save {
                    let hash = crate::session::session_hash(id);
                    inner.store.save_session(&hash, &session)?;
                }
                Ok(session)
            }
            Err(SessionRefused::Unknown) => Err(DeskFailure::Unauthenticated),
            Err(SessionRefused::Expired) => {
                self.end_expired_sessions(&mut inner, now);
                let hash = crate::session::session_hash(id);
                inner.store.delete_sessions(&[hash])?;
                Err(DeskFailure::SessionEnded)
            }
        }
    }

    /// Ends the session of `id`. An agent with no other session left is
    /// signed out of the queue.
    pub fn sign_out(&self, id: &str) -> Result<(), DeskFailure> {
        let mut inner = self.lock();
        let (hash, session) = inner
            .sessions
            .remove(id)
            .ok_or(DeskFailure::Unauthenticated)?;
        inner.store.delete_sessions(&[hash])?;
        if session.role == Role::Agent
            && !inner.sessions.has_account(&session.account, now_millis())
        {
            inner.queues.sign_out(&session.account, now_millis())?;
        }
        self.commit(&mut inner);
        tracing::info!(account = %session.account, "signed out of the desktop");
        Ok(())
    }

    pub fn set_state(&self, agent: &str, state: AgentState) -> Result<(), DeskFailure> {
        if state == AgentState::Busy || state == AgentState::Offline {
            return Err(DeskFailure::Invalid(
                "state: available or away (sign out to go offline)".into(),
            ));
        }
        let mut inner = self.lock();
        inner.queues.set_state(agent, state, now_millis())?;
        self.commit(&mut inner);
        Ok(())
    }

    pub fn accept(&self, agent: &str, handoff_id: &str) -> Result<(), DeskFailure> {
        let mut inner = self.lock();
        inner.queues.accept(agent, handoff_id, now_millis())?;
        self.commit(&mut inner);
        Ok(())
    }

    pub fn decline(&self, agent: &str, handoff_id: &str) -> Result<(), DeskFailure> {
        let mut inner = self.lock();
        inner.queues.decline(agent, handoff_id, now_millis())?;
        self.commit(&mut inner);
        Ok(())
    }

    pub fn wrap_up(
        &self,
        agent: &str,
        handoff_id: &str,
        disposition: &str,
        notes: &str,
        judgements: Judgements,
    ) -> Result<(), DeskFailure> {
        let disposition = wrap_up_disposition(disposition, notes)?;
        let mut inner = self.lock();
        let now = now_millis();
        let handled = inner
            .queues
            .wrap_up(agent, handoff_id, &disposition, notes, now)?;
        inner.queues.judge(agent, handoff_id, judgements)?;
        inner.record_ended(agent, handoff_id, &disposition, notes, handled, now)?;
        self.commit(&mut inner);
        Ok(())
    }

    /// Returns a sensitive entity's value to the agent the contact is
    /// offered or connected to, and records the reveal.
    pub fn reveal(
        &self,
        agent: &str,
        handoff_id: &str,
        entity: usize,
    ) -> Result<String, DeskFailure> {
        let inner = self.lock();
        let contact = inner
            .queues
            .contact(handoff_id)
            .ok_or_else(|| DeskError::UnknownContact(handoff_id.to_owned()))?;
        if assigned_agent(contact) != Some(agent) {
            return Err(DeskError::NotOffered(handoff_id.to_owned()).into());
        }
        let value = inner
            .envelopes
            .get(handoff_id)
            .and_then(|e| e.context.as_ref())
            .and_then(|c| c.entities.get(entity))
            .ok_or_else(|| DeskFailure::Invalid("entity: no such entity".into()))?;
        inner.store.audit(&AuditEntry {
            at: now_millis(),
            tenant: contact.tenant.clone(),
            agent: agent.to_owned(),
            handoff_id: handoff_id.to_owned(),
            action: "reveal".into(),
            subject: value.name.clone(),
        })?;
        tracing::info!(%agent, %handoff_id, entity = %value.name, "sensitive entity revealed");
        Ok(value.value.clone())
    }

    /// What one agent's desktop shows; None once the session ended.
    pub fn agent_view(&self, session_id: &str) -> Option<AgentView> {
        let inner = self.lock();
        let session = inner.sessions.peek(session_id, now_millis())?;
        if session.role != Role::Agent {
            return None;
        }
        let agent = inner.queues.agent(&session.account)?.clone();
        let mut offers = Vec::new();
        let mut connected = Vec::new();
        for contact in inner.queues.contacts() {
            match &contact.phase {
                Phase::Offered { agent: a, until } if *a == agent.id => {
                    offers.push(pop(&inner, contact, Some(*until), None));
                }
                Phase::Connected { agent: a, since } if *a == agent.id => {
                    connected.push(pop(&inner, contact, None, Some(*since)));
                }
                _ => {}
            }
        }
        // In the order they came to the agent, so that tabs keep their place.
        offers.sort_by_key(|p| (p.offer_until, p.handoff_id.clone()));
        connected.sort_by_key(|p| (p.connected_since, p.handoff_id.clone()));
        let chat_capacity = inner.queues.chat_capacity(&agent);
        let waiting = inner
            .queues
            .contacts()
            .filter(|c| {
                c.phase == Phase::Waiting
                    && !c.is_held()
                    && c.tenant == agent.tenant
                    && c.skills.is_subset(&agent.skills)
            })
            .count();
        Some(AgentView {
            now: now_millis(),
            agent: agent.into(),
            offer: offers.first().cloned(),
            active: connected.first().cloned(),
            offers,
            connected,
            chat_capacity,
            waiting,
        })
    }

    /// What the supervisor view of session `id` shows; None once the
    /// session ended or when it is not a supervisor's.
    pub fn supervisor_view_of(&self, session_id: &str) -> Option<SupervisorView> {
        let session = self
            .lock()
            .sessions
            .peek(session_id, now_millis())
            .filter(|s| s.role.supervises())
            .cloned()?;
        Some(self.supervisor_view(&session))
    }

    /// The queues, contacts, agents and reveals of the tenants `session`
    /// sees, and nothing of any other tenant.
    pub fn supervisor_view(&self, session: &Session) -> SupervisorView {
        let inner = self.lock();
        let mut tenants: BTreeSet<String> = inner.queues.tenants();
        tenants.extend(session.tenants.iter().cloned());
        tenants.retain(|t| t != crate::accounts::EVERY_TENANT && session.sees(t));
        let queues = tenants
            .iter()
            .flat_map(|tenant| {
                inner
                    .queues
                    .tenant_queues(tenant)
                    .into_iter()
                    .map(|q| queue_summary(&inner.queues, QueueKey::new(tenant, &q.name), q))
                    .collect::<Vec<_>>()
            })
            .collect();
        let contacts = inner
            .queues
            .contacts()
            .filter(|c| session.sees(&c.tenant))
            .map(|c| {
                let context = inner
                    .envelopes
                    .get(&c.handoff_id)
                    .and_then(|e| e.context.as_ref());
                let standing = inner.queues.standing(&c.handoff_id);
                ContactSummary {
                    handoff_id: c.handoff_id.clone(),
                    tenant: c.tenant.clone(),
                    queue: c.queue.clone(),
                    priority: c.priority,
                    enqueued_at: c.enqueued_at,
                    phase: phase_name(c).into(),
                    agent: assigned_agent(c).map(str::to_owned),
                    intent: context
                        .and_then(|c| c.intent.as_ref())
                        .map(|i| i.name.clone())
                        .unwrap_or_default(),
                    position: standing.map(|s| s.position),
                    estimated_wait_seconds: standing.map(|s| s.estimated_wait.as_secs()),
                    callback: c
                        .callback
                        .as_ref()
                        .map(|r| CallbackView::of(r, now_millis())),
                }
            })
            .collect::<Vec<ContactSummary>>();
        let shown = contacts
            .iter()
            .map(|c| (c.tenant.as_str(), c.handoff_id.as_str()));
        let disclosures = self.disclosures.of(shown);
        SupervisorView {
            now: now_millis(),
            queues,
            contacts,
            disclosures,
            agents: inner
                .queues
                .agents()
                .filter(|a| session.sees(&a.tenant))
                .cloned()
                .map(AgentSummary::from)
                .collect(),
            audit: inner
                .store
                .recent_audit(20, |tenant| session.sees(tenant))
                .unwrap_or_default(),
        }
    }
}

fn queue_summary(queues: &Queues, key: QueueKey, spec: &crate::domain::QueueSpec) -> QueueSummary {
    let now = queues
        .availability(&key.tenant, &key.name, &[], Media::Voice)
        .unwrap_or_default();
    QueueSummary {
        average_handle_seconds: queues.average_handle_time(&key).as_secs(),
        tenant: key.tenant,
        name: key.name,
        priority: spec.priority,
        waiting: now.waiting as usize,
        agents_available: now.agents_available as usize,
        next_estimate_seconds: now.estimated_wait.unwrap_or_default().as_secs(),
    }
}

/// Trims `text`; None when empty or longer than `max` bytes.
/// The trimmed disposition of a wrap-up or a hand-back, once it and the
/// notes are within their bounds.
fn wrap_up_disposition(disposition: &str, notes: &str) -> Result<String, DeskFailure> {
    let disposition = bounded(disposition, 64)
        .ok_or_else(|| DeskFailure::Invalid("disposition: required, at most 64 bytes".into()))?;
    if notes.len() > 4096 {
        return Err(DeskFailure::Invalid("notes: at most 4096 bytes".into()));
    }
    Ok(disposition)
}

fn bounded(text: &str, max: usize) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= max).then(|| text.to_owned())
}

fn assigned_agent(contact: &Contact) -> Option<&str> {
    match &contact.phase {
        Phase::Offered { agent, .. }
        | Phase::Connected { agent, .. }
        | Phase::Completed { agent, .. } => Some(agent),
        _ => None,
    }
}

/// The contact's phase as the supervisor sees it: `held` for a restored
/// contact whose transfer is not re-attached yet.
fn phase_name(contact: &Contact) -> &'static str {
    if contact.is_held() {
        return "held";
    }
    match &contact.phase {
        Phase::Waiting => "waiting",
        Phase::Offered { .. } => "offered",
        Phase::Connected { .. } => "connected",
        Phase::Completed { .. } => "completed",
        Phase::Failed { .. } => "failed",
    }
}

/// A contact as its transfer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactStatus {
    /// The attempt whose transfer the contact belongs to (a later attempt
    /// may take a contact over).
    pub attempt: u32,
    pub phase: Phase,
    /// Set while waiting.
    pub standing: Option<Standing>,
    /// The name of the agent it is offered or connected to.
    pub agent_name: String,
    /// Set when the customer is to be called back (the number is for the
    /// connector's dial only).
    pub callback: Option<CallbackRequest>,
}

/// The request of the sign-in form.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The account's name (`agent_id` is accepted too).
    #[serde(alias = "agent_id")]
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A session just started: its id goes to the browser in a cookie, and
/// nowhere else.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_id: String,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentSummary {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub skills: Vec<String>,
    pub contact: String,
    pub state: AgentState,
    pub state_since: Millis,
}

impl From<Agent> for AgentSummary {
    fn from(agent: Agent) -> Self {
        Self {
            id: agent.id,
            name: agent.name,
            tenant: agent.tenant,
            skills: agent.skills.into_iter().collect(),
            contact: agent.contact,
            state: agent.state,
            state_since: agent.state_since,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub now: Millis,
    pub agent: AgentSummary,
    /// The first of `offers`, for clients that take one at a time.
    pub offer: Option<ScreenPop>,
    /// The first of `connected`, for clients that take one at a time.
    pub active: Option<ScreenPop>,
    /// The contacts offered to the agent, oldest offer first: several
    /// chats may be at once.
    pub offers: Vec<ScreenPop>,
    /// The contacts the agent holds, first accepted first: a call, or up
    /// to `chat_capacity` chats.
    pub connected: Vec<ScreenPop>,
    /// How many chats the agent holds at once.
    pub chat_capacity: u32,
    /// Contacts waiting that this agent could take.
    pub waiting: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupervisorView {
    pub now: Millis,
    pub queues: Vec<QueueSummary>,
    pub contacts: Vec<ContactSummary>,
    /// What was disclosed of each of `contacts` (fields and forms only).
    pub disclosures: Vec<crate::disclosures::HandoffDisclosure>,
    pub agents: Vec<AgentSummary>,
    pub audit: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub tenant: String,
    pub name: String,
    pub priority: u32,
    pub waiting: usize,
    pub agents_available: usize,
    pub average_handle_seconds: u64,
    pub next_estimate_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactSummary {
    pub handoff_id: String,
    pub tenant: String,
    pub queue: String,
    pub priority: u32,
    pub enqueued_at: Millis,
    pub phase: String,
    pub agent: Option<String>,
    pub intent: String,
    pub position: Option<u32>,
    pub estimated_wait_seconds: Option<u64>,
    /// A callback: its number masked, its window and how far the dial went.
    pub callback: Option<CallbackView>,
}

/// The screen pop: everything the human needs before accepting, with
/// sensitive entity values left out (revealed one by one, audited).
#[derive(Debug, Clone, Serialize)]
pub struct ScreenPop {
    pub handoff_id: String,
    pub queue: String,
    pub priority: u32,
    pub enqueued_at: Millis,
    pub offer_until: Option<Millis>,
    pub connected_since: Option<Millis>,
    /// A callback: its number masked (also to the agent who took it:
    /// Baton dials, the agent never needs it), its window and how far the
    /// dial went.
    pub callback: Option<CallbackView>,
    pub channel: String,
    pub language: String,
    pub summary: String,
    pub intent: Option<PopIntent>,
    pub entities: Vec<PopEntity>,
    pub transcript: Vec<PopTurn>,
    pub attempts: Vec<PopAttempt>,
    pub escalation: Option<PopEscalation>,
    pub agent_notes: String,
    pub omitted_fields: Vec<String>,
    /// The control service's full context page, when it sent one.
    pub screen_pop_url: String,
    /// W3C Trace Context of the handoff, for the desktop's own spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopIntent {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopEntity {
    pub index: usize,
    pub name: String,
    pub kind: String,
    pub sensitive: bool,
    /// None when sensitive: fetched through the audited reveal.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopTurn {
    pub speaker: String,
    pub text: String,
    pub at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopAttempt {
    pub action: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopEscalation {
    pub kind: String,
    pub detail: String,
}

/// `SPEAKER_CUSTOMER` → `customer`.
fn short_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn pop(
    inner: &Inner,
    contact: &Contact,
    offer_until: Option<Millis>,
    connected_since: Option<Millis>,
) -> ScreenPop {
    let envelope = inner.envelopes.get(&contact.handoff_id);
    let context = envelope.and_then(|e| e.context.clone()).unwrap_or_default();
    let conversation = envelope
        .and_then(|e| e.conversation.clone())
        .unwrap_or_default();
    ScreenPop {
        handoff_id: contact.handoff_id.clone(),
        queue: contact.queue.clone(),
        priority: contact.priority,
        enqueued_at: contact.enqueued_at,
        offer_until,
        connected_since,
        callback: contact
            .callback
            .as_ref()
            .map(|r| CallbackView::of(r, now_millis())),
        channel: short_name(conversation.channel().as_str_name(), "CHANNEL_"),
        language: conversation.language.clone(),
        summary: context.summary.clone(),
        intent: context.intent.as_ref().map(|i| PopIntent {
            name: i.name.clone(),
            confidence: i.confidence,
        }),
        entities: context
            .entities
            .iter()
            .enumerate()
            .map(|(index, e)| PopEntity {
                index,
                name: e.name.clone(),
                kind: e.r#type.clone(),
                sensitive: e.sensitive,
                value: (!e.sensitive).then(|| e.value.clone()),
            })
            .collect(),
        transcript: context
            .transcript
            .iter()
            .map(|t| PopTurn {
                speaker: short_name(t.speaker().as_str_name(), "SPEAKER_"),
                text: t.text.clone(),
                at: t
                    .at
                    .and_then(|at| SystemTime::try_from(at).ok())
                    .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64),
            })
            .collect(),
        attempts: context
            .attempts
            .iter()
            .map(|a| PopAttempt {
                action: a.action.clone(),
                outcome: short_name(a.outcome().as_str_name(), "ATTEMPT_OUTCOME_"),
                detail: a.detail.clone(),
            })
            .collect(),
        escalation: context.reason.as_ref().map(|r| PopEscalation {
            kind: short_name(r.kind().as_str_name(), "ESCALATION_KIND_"),
            detail: r.detail.clone(),
        }),
        agent_notes: context.agent_notes.clone(),
        omitted_fields: envelope
            .map(|e| e.omitted_fields.clone())
            .unwrap_or_default(),
        screen_pop_url: envelope
            .and_then(|e| e.reference.as_ref())
            .map(|r| r.screen_pop_url.clone())
            .unwrap_or_default(),
        traceparent: inner.traces.get(&contact.handoff_id).cloned(),
    }
}

/// The handoff's priority for the queue.
pub fn priority_of(context: Option<&pb::HandoffContext>) -> u32 {
    context.map_or(0, |c| c.priority)
}

/// How often time-driven changes (offer time-outs, maximum waits) are
/// applied.
pub const TICK: Duration = Duration::from_millis(250);

/// How often the store is probed with a write, so that a store that cannot
/// write is noticed (and its recovery too) while the queue is idle.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

#[path = "callback/desk.rs"]
mod callback;
pub use callback::{CallbackView, request_of};
#[path = "hand_back/desk.rs"]
mod hand_back;
#[path = "live_context/desk.rs"]
mod live_context;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Phase;

    /// An agent of tenant acme with skill support.
    pub(crate) fn agent_account(name: &str) -> Account {
        Account {
            name: name.into(),
            display_name: None,
            role: Role::Agent,
            tenants: vec!["acme".into()],
            skills: vec!["support".into()],
            contact: format!("sip:{name}@example.com"),
            password: String::new(),
        }
    }

    /// A session that sees every tenant.
    pub(crate) fn supervisor() -> Session {
        Session {
            account: "root".into(),
            role: Role::Admin,
            tenants: vec![crate::accounts::EVERY_TENANT.into()],
            created: now_millis(),
            last_seen: now_millis(),
            via: SignInMethod::Password,
        }
    }

    pub(crate) fn envelope() -> ContextEnvelope {
        ContextEnvelope {
            context: Some(pb::HandoffContext {
                summary: "Charged twice".into(),
                entities: vec![pb::Entity {
                    name: "account_number".into(),
                    value: "ACC-1".into(),
                    r#type: "account".into(),
                    sensitive: true,
                }],
                priority: 2,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn queue_agents_and_sessions_survive_a_restart_and_sensitive_values_stay_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        let token = {
            let desk = Desk::open(&config).expect("open");
            let token = sign_in(&desk, "ann");
            desk.set_state("ann", AgentState::Away).expect("away");
            desk.enqueue(
                NewContact {
                    priority: 2,
                    ..new_contact("h1", 1)
                },
                envelope(),
            )
            .expect("enqueue");
            token
        };

        let desk = Desk::open(&config).expect("reopen");
        let status = desk.contact_status("h1").expect("still queued");
        assert_eq!(status.phase, Phase::Waiting);
        // The open desktop's session still works: it reconnects by itself.
        assert_eq!(desk.session(&token).expect("session").account, "ann");
        desk.set_state("ann", AgentState::Available)
            .expect("available");
        let view = desk.agent_view(&token).expect("view");
        assert!(view.offer.is_none(), "held until the transfer re-attaches");
        assert_eq!(view.waiting, 0);
        desk.enqueue(
            NewContact {
                priority: 2,
                ..new_contact("h1", 1)
            },
            envelope(),
        )
        .expect("re-attach");
        let status = desk.contact_status("h1").expect("still queued");
        assert_eq!(status.standing.map(|s| s.position), None, "offered at once");
        let view = desk.agent_view(&token).expect("view");
        let offer = view.offer.expect("offered to ann");
        assert_eq!(offer.summary, "Charged twice");
        assert_eq!(offer.entities[0].value, None, "masked until revealed");
        assert_eq!(desk.reveal("ann", "h1", 0).expect("reveal"), "ACC-1");
        let audit = desk.supervisor_view(&supervisor()).audit;
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].subject, "account_number");
        assert!(
            desk.reveal("bob", "h1", 0).is_err(),
            "only the agent it is offered to"
        );
    }

    #[test]
    fn a_restored_contact_no_transfer_resumes_is_withdrawn_after_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        {
            let desk = Desk::open(&config).expect("open");
            sign_in(&desk, "ann");
            desk.set_state("ann", AgentState::Away).expect("away");
            desk.enqueue(new_contact("resumed", 1), envelope())
                .expect("enqueue");
            desk.enqueue(new_contact("abandoned", 1), envelope())
                .expect("enqueue");
        }
        let desk = Desk::open(&config).expect("reopen");
        desk.enqueue(new_contact("resumed", 1), envelope())
            .expect("re-attach");
        let mut inner = desk.lock();
        let deadline = inner.reattach_deadline.expect("contacts held");
        desk.withdraw_orphans(&mut inner, deadline - 1);
        assert!(
            inner.queues.contact("abandoned").is_some(),
            "still within the grace period"
        );
        desk.withdraw_orphans(&mut inner, deadline);
        assert!(inner.queues.contact("abandoned").is_none());
        assert!(inner.queues.contact("resumed").is_some());
    }

    /// A voice contact of acme's support queue, at priority 0.
    pub(crate) fn new_contact(id: &str, attempt: u32) -> NewContact {
        NewContact {
            handoff_id: id.into(),
            attempt,
            tenant: "acme".into(),
            queue: "support".into(),
            media: crate::domain::Media::Voice,
            skills: vec![],
            priority: 0,
            callback: None,
        }
    }

    fn sign_in(desk: &Desk, agent: &str) -> String {
        desk.open_session(&agent_account(agent))
            .expect("sign in")
            .session_id
    }

    #[test]
    fn an_offer_outstanding_at_a_restart_is_shown_to_nobody_until_re_attached_then_to_its_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        let (ann, bob) = {
            let desk = Desk::open(&config).expect("open");
            let ann = sign_in(&desk, "ann");
            let bob = sign_in(&desk, "bob");
            desk.enqueue(new_contact("h1", 1), envelope())
                .expect("enqueue");
            assert!(desk.agent_view(&ann).is_some_and(|v| v.offer.is_some()));
            (ann, bob)
        };
        // (Offers that timed out while the process was down are the
        // domain's tests: held, they are not expired either.)
        let desk = Desk::open(&config).expect("reopen");
        desk.tick();
        for token in [&ann, &bob] {
            let view = desk.agent_view(token).expect("view");
            assert!(view.offer.is_none(), "held: nobody sees it");
            assert_eq!(view.agent.state, AgentState::Available, "not a miss");
        }
        assert!(desk.accept("ann", "h1").is_err());
        assert!(desk.accept("bob", "h1").is_err());
        assert_eq!(
            desk.supervisor_view(&supervisor()).contacts[0].phase,
            "held"
        );

        desk.enqueue(new_contact("h1", 1), envelope())
            .expect("re-attach");
        assert!(desk.agent_view(&ann).is_some_and(|v| v.offer.is_some()));
        assert!(desk.agent_view(&bob).is_some_and(|v| v.offer.is_none()));
        desk.accept("ann", "h1").expect("accept");
    }

    /// A desk where ann (away) is signed in and h1 (attempt 1) waits,
    /// opened again: h1 is held; returns ann's session.
    fn restarted_with_h1_held(config: &QueueConfig) -> (Arc<Desk>, String) {
        let ann = {
            let desk = Desk::open(config).expect("open");
            let ann = sign_in(&desk, "ann");
            desk.set_state("ann", AgentState::Away).expect("away");
            desk.enqueue(new_contact("h1", 1), envelope())
                .expect("enqueue");
            ann
        };
        (Desk::open(config).expect("reopen"), ann)
    }

    #[test]
    fn a_cancel_withdraws_a_held_contact_at_once_and_a_late_start_never_queues_it_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        let (desk, ann) = restarted_with_h1_held(&config);
        desk.release("h1", 1);
        assert!(desk.contact_status("h1").is_none(), "withdrawn at once");
        assert!(desk.supervisor_view(&supervisor()).contacts.is_empty());
        desk.set_state("ann", AgentState::Available)
            .expect("available");
        assert!(matches!(
            desk.enqueue(new_contact("h1", 1), envelope()),
            Err(NotAdmitted::Withdrawn(_))
        ));
        assert!(desk.agent_view(&ann).is_some_and(|v| v.offer.is_none()));
        drop(desk);
        // Remembered across a restart too.
        let desk = Desk::open(&config).expect("reopen");
        assert!(matches!(
            desk.enqueue(new_contact("h1", 1), envelope()),
            Err(NotAdmitted::Withdrawn(_))
        ));
        assert!(desk.agent_view(&ann).is_some_and(|v| v.offer.is_none()));
    }

    #[test]
    fn a_later_attempt_takes_over_the_contact_and_a_cancel_of_the_earlier_one_leaves_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        let (desk, ann) = restarted_with_h1_held(&config);
        assert_eq!(
            desk.enqueue(new_contact("h1", 2), envelope()),
            Ok(Admitted::TookOver { from_attempt: 1 })
        );
        desk.release("h1", 1);
        let status = desk.contact_status("h1").expect("kept");
        assert_eq!(status.attempt, 2);
        assert_eq!(desk.supervisor_view(&supervisor()).contacts.len(), 1);
        desk.set_state("ann", AgentState::Available)
            .expect("available");
        let offer = desk.agent_view(&ann).and_then(|v| v.offer).expect("offer");
        assert_eq!(offer.summary, "Charged twice", "the context stays");
    }
}
