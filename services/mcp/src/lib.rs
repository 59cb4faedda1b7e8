//! `baton mcp`: Baton's handoff API as Model Context Protocol tools, so an
//! LLM agent can decide to escalate, hand the conversation to a human with
//! its context, follow the handoff and cancel it. The tools call the
//! control service over gRPC with the operator's credential (the same API
//! keys and bearer tokens as the gRPC API); they hold no state of their
//! own.
//!
//! Two transports: stdio ([`BatonTools::serve_stdio`]), where the
//! operator's credential is used for every call, and streamable HTTP
//! ([`serve_http`]), where each HTTP request's own `Authorization` is
//! forwarded and the server holds no credential at all (a request without
//! one gets 401 before any tool runs).

mod args;
mod results;

use baton_proto::bearer::BearerCredential;
use baton_proto::handoff::v1 as handoff;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use args::{EvaluateArgs, HandOffArgs, HandoffIdArgs};

/// What the server tells the LLM about itself at initialization.
const INSTRUCTIONS: &str = "Baton hands a live customer from you to a human agent with the \
conversation's context, so the customer never repeats themselves. Each turn, call \
evaluate_escalation with the new turns; when it says escalate (or the customer asks for a \
person: never argue), call hand_off_to_human with a summary, the facts gathered and the \
transcript, then say the returned `say` phrase to the customer. Follow the handoff with \
get_handoff_status until `ended` is true; stop talking to the customer once `connected` is \
true. cancel_handoff if the customer leaves or changes their mind before a human answers.";

/// The MCP server: four tools over one control service connection.
#[derive(Clone)]
pub struct BatonTools {
    client: HandoffServiceClient<InterceptedService<Channel, BearerCredential>>,
    tool_router: ToolRouter<Self>,
}

impl BatonTools {
    /// Tools calling the control service on `channel`, with `credential`
    /// (an API key or a bearer token) on every call. Errors when the
    /// credential cannot be a header value.
    pub fn new(channel: Channel, credential: Option<&str>) -> Result<Self, String> {
        let credential = BearerCredential::new(credential).map_err(|e| e.to_string())?;
        Ok(BatonTools {
            client: HandoffServiceClient::with_interceptor(channel, credential),
            tool_router: Self::tool_router(),
        })
    }

    /// Serves MCP on stdin and stdout until the client closes them.
    pub async fn serve_stdio(self) -> Result<(), String> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| format!("MCP initialization failed: {e}"))?;
        running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| format!("the MCP session ended with an error: {e}"))
    }
}

#[tool_router]
impl BatonTools {
    #[tool(
        description = "Decide whether to hand this conversation to a human now. Call it on \
every customer turn with the turns since the last call. Returns `escalate` (true: call \
hand_off_to_human now), the `triggers` that fired with their evidence (explicit request, \
distress, complexity, compliance, repeated failure), a `suggested_route`, and `say`, what to \
tell the customer when escalating. The policy remembers the conversation by its id."
    )]
    async fn evaluate_escalation(
        &self,
        Parameters(args): Parameters<EvaluateArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = forward_credential(args.request(), &context);
        let response = self.client.clone().evaluate_escalation(request).await;
        results::respond(
            response.map(|r| results::decision(r.into_inner().decision.unwrap_or_default())),
        )
    }

    #[tool(
        description = "Hand the live customer to a human agent (a contact-center queue, a \
phone number or a SIP address) with everything you know, so they never repeat themselves. \
Pass a summary for the human, why you escalate, the facts gathered (account number, order, \
name…; mark personal data sensitive) and the transcript. Returns the `handoff_id`, its `state` \
and `say`: tell the customer exactly that now. Safe to call again with the same arguments: it \
never transfers twice. Then follow it with get_handoff_status."
    )]
    async fn hand_off_to_human(
        &self,
        Parameters(args): Parameters<HandOffArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = forward_credential(args.request(), &context);
        let response = self.client.clone().create_handoff(request).await;
        results::respond(response.map(|r| {
            let response = r.into_inner();
            results::created(response.handoff.unwrap_or_default(), response.created)
        }))
    }

    #[tool(
        description = "Where a handoff is now: `state` (PENDING, ROUTING, QUEUED, RINGING, \
CONNECTED, COMPLETED, FAILED, CANCELLED, HANDED_BACK…), `connected` (a human has the customer: \
stop talking), `ended` (nothing more will happen), the queue position and estimated wait while \
queued, and `failure_reason` if it failed (then apologise and offer another way). Call it every \
few seconds while the customer waits; use the wait to keep them informed."
    )]
    async fn get_handoff_status(
        &self,
        Parameters(args): Parameters<HandoffIdArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = handoff::GetHandoffRequest {
            handoff_id: args.handoff_id,
        };
        let request = forward_credential(request, &context);
        let response = self.client.clone().get_handoff(request).await;
        results::respond(
            response.map(|r| results::status(&r.into_inner().handoff.unwrap_or_default())),
        )
    }

    #[tool(
        description = "Cancel a handoff no human has answered yet: the customer hung up, left \
the chat, or no longer wants a person. Refused (FAILED_PRECONDITION) once it has ended or a \
callback is dialing. Returns the handoff's status."
    )]
    async fn cancel_handoff(
        &self,
        Parameters(args): Parameters<HandoffIdArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = handoff::CancelHandoffRequest {
            handoff_id: args.handoff_id,
            reason: args.reason,
        };
        let request = forward_credential(request, &context);
        let response = self.client.clone().cancel_handoff(request).await;
        results::respond(
            response.map(|r| results::status(&r.into_inner().handoff.unwrap_or_default())),
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BatonTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("baton", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// `message` as a gRPC request carrying the `Authorization` of the HTTP
/// request that delivered the tool call, if any (streamable HTTP; on stdio
/// there is none and the operator's credential is added instead).
fn forward_credential<T>(message: T, context: &RequestContext<RoleServer>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let authorization = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(http::header::AUTHORIZATION))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<MetadataValue<Ascii>>().ok());
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Serves the tools over MCP's streamable HTTP transport at `/mcp` on
/// `listener` until `shutdown` completes. Each HTTP request must bring its
/// own `Authorization: Bearer …` (an API key or a token of the gRPC API),
/// forwarded to the control service, which decides; requests without one
/// get 401. `allowed_hosts` are the `Host` values accepted besides
/// loopback's (a guard against DNS rebinding).
pub async fn serve_http(
    channel: Channel,
    listener: tokio::net::TcpListener,
    allowed_hosts: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let tools = BatonTools::new(channel, None)?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    hosts.extend(allowed_hosts);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_cancellation_token(cancel.child_token());
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        std::sync::Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(require_bearer));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await
        .map_err(|e| format!("the MCP HTTP server failed: {e}"))
}

/// 401 with `WWW-Authenticate: Bearer` for a request without a bearer
/// credential: the server has none of its own to fall back on.
async fn require_bearer(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let bearer = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Bearer ") && value.len() > "Bearer ".len());
    if bearer {
        next.run(request).await
    } else {
        axum::response::IntoResponse::into_response((
            http::StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
            "an Authorization: Bearer header with a Baton API key or token is required\n",
        ))
    }
}
