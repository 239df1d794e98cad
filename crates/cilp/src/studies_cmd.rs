//! (in progress: being written)

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct FusionArgs {}

pub fn fusion(_a: FusionArgs) -> Result<()> {
    bail!("not available yet")
}

#[derive(Args, Debug)]
pub struct AblationArgs {}

pub fn ablation(_a: AblationArgs) -> Result<()> {
    bail!("not available yet")
}

