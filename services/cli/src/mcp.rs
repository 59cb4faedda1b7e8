//! `baton mcp`: the MCP server on stdio or streamable HTTP (see `baton-mcp`).

use std::net::SocketAddr;

use crate::exit;
use crate::handoff::{Connection, channel};

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    connection: Connection,
    /// Serve MCP's streamable HTTP transport at http://<ADDRESS>/mcp
    /// instead of stdio. Each HTTP request must carry its own
    /// `Authorization: Bearer <API key or token>`, forwarded to the control
    /// service; --api-key is not used.
    #[arg(long, value_name = "ADDRESS")]
    listen: Option<SocketAddr>,
    /// A `Host` the HTTP transport accepts besides loopback's (the name
    /// clients reach it by); repeatable.
    #[arg(long, requires = "listen")]
    allowed_host: Vec<String>,
}

pub async fn run(args: McpArgs) -> u8 {
    // stdout is the stdio transport: logs and errors go to stderr only.
    let channel = match channel(&args.connection).await {
        Ok(channel) => channel,
        Err(failure) => {
            eprintln!("baton mcp: {}", failure.message);
            return failure.code;
        }
    };
    let served = match args.listen {
        Some(address) => {
            let listener = match tokio::net::TcpListener::bind(address).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!("baton mcp: --listen {address}: {error}");
                    return exit::ERROR;
                }
            };
            if let Ok(bound) = listener.local_addr() {
                eprintln!("baton mcp: streamable HTTP on http://{bound}/mcp");
            }
            let shutdown = baton_service_kit::lifecycle::shutdown_signal();
            baton_mcp::serve_http(channel, listener, args.allowed_host, shutdown).await
        }
        None => match baton_mcp::BatonTools::new(channel, args.connection.api_key()) {
            Ok(tools) => tools.serve_stdio().await,
            Err(message) => {
                eprintln!("baton mcp: --api-key: {message}");
                return exit::REJECTED;
            }
        },
    };
    match served {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("baton mcp: {message}");
            exit::ERROR
        }
    }
}
