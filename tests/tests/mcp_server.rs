//! `baton mcp` driven by the official Python MCP client over stdio, in
//! front of a real `baton dev` (`tests/mcp/test_mcp.py`).

use std::path::Path;
use std::process::Command;

#[test]
fn baton_mcp_serves_its_tools_to_a_real_mcp_client() {
    let output = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_mcp"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp"))
        .env("BATON_BIN", baton_tests::binary("baton"))
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the MCP tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
