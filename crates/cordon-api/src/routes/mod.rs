//! The HTTP routes, by area.

pub(crate) mod accounts;
pub(crate) mod appeals;
pub(crate) mod ops;
pub(crate) mod reports;
pub(crate) mod review;
pub(crate) mod search;
pub(crate) mod statements;
