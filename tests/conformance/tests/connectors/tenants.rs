//! A connector dedicated to tenants: the script connector with `[server]
//! tenants` naming the kit's tenant conforms, and refuses another tenant's
//! transfers with INVALID_ARGUMENT naming `tenant` (the shared script
//! connector of `script.rs` serves any tenant instead).

use crate::common::{assert_script_conforms, profile};

#[tokio::test]
async fn a_connector_dedicated_to_tenants_serves_them_and_refuses_the_others() {
    let dedicated = format!(
        "{}\n[server]\ntenants = [\"conformance\", \"acme\"]\n",
        include_str!("script.toml")
    );
    let mut profile = profile("script", &[]);
    profile.foreign_tenant = Some("globex".into());
    let report = assert_script_conforms(&dedicated, &profile).await;
    let foreign = report.get("tenants.foreign").expect("ran").outcome.text();
    assert!(foreign.contains("InvalidArgument"), "{foreign}");
    assert!(foreign.contains("globex"), "{foreign}");
}
