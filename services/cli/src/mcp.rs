//! `baton mcp`: the MCP server on stdio (see `baton-mcp`).

use crate::exit;
use crate::handoff::{Connection, channel};

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    connection: Connection,
}

pub async fn run(args: McpArgs) -> u8 {
    // stdout is the MCP transport: logs and errors go to stderr only.
    let channel = match channel(&args.connection).await {
        Ok(channel) => channel,
        Err(failure) => {
            eprintln!("baton mcp: {}", failure.message);
            return failure.code;
        }
    };
    let tools = match baton_mcp::BatonTools::new(channel, args.connection.api_key()) {
        Ok(tools) => tools,
        Err(message) => {
            eprintln!("baton mcp: --api-key: {message}");
            return exit::REJECTED;
        }
    };
    match tools.serve_stdio().await {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("baton mcp: {message}");
            exit::ERROR
        }
    }
}
