//! `baton-bench`: starts the real services in this process on loopback and
//! prints what a handoff costs, each figure beside a baseline measured in
//! the same run on the same machine, because absolute times on a shared
//! machine drift and ratios do not (much).

mod api;
mod embedded;
mod fanout;
mod firstring;
mod floor;
mod memory;
mod payload;
mod queuerate;
mod replicas;
mod report;
mod restart;
mod screenpop;
mod store;

use std::path::PathBuf;

use clap::Parser;
use report::Table;

/// Baton's benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "baton-bench", version)]
struct Args {
    /// A tenth of the counts and time bounds: proves the suite still works.
    #[arg(long)]
    quick: bool,
    /// Directory for the databases and the fdatasync probe (on the disk to
    /// measure); a temporary directory under the system's temp dir when unset.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Scenarios to run: `store`, `api`, `firstring`, `screenpop`, `fanout`,
    /// `replicas`, `queuerate`, `memory`, `restart` (all when none given).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// How much each scenario does: counts and time bounds.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub quick: bool,
}

impl Scale {
    /// `full` in the full run, a tenth (at least `min`) in quick mode.
    pub fn count(self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(10)
        } else {
            full
        }
    }

    pub fn bound(self, full: std::time::Duration) -> std::time::Duration {
        if self.quick { full / 5 } else { full }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = Scale { quick: args.quick };
    let base = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::tempdir_in(dir)?
        }
        None => tempfile::tempdir()?,
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut table = Table::default();
    // The store first, while the disk is not busy checkpointing the API
    // scenario's database.
    if wanted("store") {
        store::run(scale, &base.path().join("store"), &mut table).await?;
    }
    if wanted("api") {
        api::run(scale, &base.path().join("api"), &mut table).await?;
    }
    if wanted("firstring") {
        firstring::run(scale, &base.path().join("firstring"), &mut table).await?;
    }
    if wanted("screenpop") {
        screenpop::run(scale, &base.path().join("screenpop"), &mut table).await?;
    }
    if wanted("fanout") {
        fanout::run(scale, &base.path().join("fanout"), &mut table).await?;
    }
    if wanted("queuerate") {
        queuerate::run(scale, &base.path().join("queuerate"), &mut table).await?;
    }
    if wanted("memory") {
        memory::run(scale, &base.path().join("memory"), &mut table).await?;
    }
    if wanted("restart") {
        restart::run(scale, &base.path().join("restart"), &mut table).await?;
    }
    if wanted("replicas") {
        replicas::run(scale, &base.path().join("replicas"), &mut table).await?;
    }
    table.print();
    Ok(())
}
