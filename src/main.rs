use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the calling thread's free memory to the system (see
/// `eksgate::reclaim`).
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointer and touches only the calling
    // thread's heap of the allocator installed above.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    eksgate::reclaim::set_collector(collect);
    let cli = eksgate::cli::Cli::parse();
    ExitCode::from(eksgate::run_cli(cli))
}
