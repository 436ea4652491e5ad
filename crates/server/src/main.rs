//! `sessiond`: the authentication-session server and its tools. A thin
//! binary over the library (`lib.rs`, `command.rs`).

/// mimalloc instead of the system allocator: a request allocates and frees
/// dozens of small buffers (headers, futures, labels), and glibc's malloc
/// took ~7 % of the server's CPU time under load, with `malloc_consolidate`
/// showing fragmentation (bench/path.sh, docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sessiond_server::command::main()
}
