//! One module per command of the command line (`cordon run` is the composition root in
//! `run.rs`).

pub mod classify;
pub mod eval;
pub mod produce;
pub mod train;
pub mod user;
