//! (in progress: being written)

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct AssessArgs {}

pub fn assess(_a: AssessArgs) -> Result<()> {
    bail!("not available yet")
}

