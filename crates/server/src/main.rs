//! `sessiond`: the authentication-session server and its tools. A thin
//! binary over the library (`lib.rs`, `command.rs`).

fn main() -> std::process::ExitCode {
    sessiond_server::command::main()
}
