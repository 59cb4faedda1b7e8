//! `baton mcp` driven by the official Python MCP client over stdio and
//! streamable HTTP, in front of a real `baton dev` (`tests/mcp/test_mcp.py`).

use std::process::Command;

use baton_tests::{repository_path, run_to_success};

#[test]
fn baton_mcp_serves_its_tools_to_a_real_mcp_client() {
    run_to_success(
        "the MCP tests",
        Command::new("python3")
            .args(["-m", "unittest", "-v", "test_mcp"])
            .current_dir(repository_path("tests/mcp"))
            .env("BATON_BIN", baton_tests::binary("baton")),
    );
}
