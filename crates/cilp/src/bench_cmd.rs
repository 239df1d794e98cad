//! (in progress: being written)

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct BenchArgs {}

pub fn bench(_a: BenchArgs) -> Result<()> {
    bail!("not available yet")
}

