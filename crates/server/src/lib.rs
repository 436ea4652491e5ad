//! sessiond as a library: every module of the server, so handlers and
//! stores can be tested in-process; `main.rs` is a thin binary over
//! [`command::main`]. The black-box tests in `tests/` still run the binary.

pub mod access_cli;
pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod delegation;
pub mod generate_cli;
pub mod http;
pub mod login;
pub mod serve;
pub mod systemd;
pub mod throttle;
pub mod ticket_cli;
pub mod tickets;
pub mod tls;
pub mod token_cli;
pub mod user_cli;
