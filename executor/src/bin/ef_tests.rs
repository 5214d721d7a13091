//! `ef-tests`: runs Ethereum Foundation blockchain tests through lanes' block import.
//!
//! `ef-tests [--mode sequential|parallel] [--threads N] [--jobs N] PATH...` where each PATH is
//! a JSON file or a directory searched recursively. Prints each failure by test name, the
//! skip reasons, and ends with `N passed, N failed, N skipped`; exits non-zero if any test
//! failed.

/// glibc malloc spends a large share of trie hashing and block building in its free lists;
/// mimalloc keeps small allocations thread-local.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, ValueEnum};
use eyre::WrapErr;
use lanes_executor::{
    ParallelExecutor, SequentialExecutor,
    conformance::{Outcome, Summary, TestReport, find_test_files, run_files},
};
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, time::Instant};

/// Which executor imports the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// The reference executor, one transaction after another.
    Sequential,
    /// The parallel executor.
    Parallel,
}

/// Runs Ethereum Foundation blockchain tests through lanes' executor.
#[derive(Debug, Parser)]
#[command(name = "ef-tests")]
struct Args {
    /// Executor to import blocks with.
    #[arg(long, value_enum, default_value = "sequential")]
    mode: Mode,
    /// Worker threads of the parallel executor (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Test files run concurrently (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Test files, or directories searched recursively for `.json` files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn main() -> eyre::Result<ExitCode> {
    let args = Args::parse();
    let started = Instant::now();
    let files = find_test_files(&args.paths).wrap_err("listing test files")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cores);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("ef-tests-{i}"))
        .build()
        .wrap_err("building the thread pool")?;
    let reports = match args.mode {
        Mode::Sequential => {
            let executor = SequentialExecutor::new();
            pool.install(|| run_files(&files, &executor))
        }
        Mode::Parallel => {
            // One executor (and so one worker pool) shared by all files; its workers are
            // separate from the file-level pool above.
            let executor = ParallelExecutor::new(args.threads.unwrap_or(cores));
            pool.install(|| run_files(&files, &executor))
        }
    };
    print_reports(&reports);
    let summary = Summary::of(&reports);
    println!(
        "ran {} tests from {} files in {:.1}s ({:?} mode, {jobs} jobs)",
        reports.len(),
        files.len(),
        started.elapsed().as_secs_f64(),
        args.mode,
    );
    println!("{summary}");
    Ok(if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_reports(reports: &[TestReport]) {
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for report in reports {
        match &report.outcome {
            Outcome::Passed => {}
            Outcome::Failed(reason) => {
                println!("FAIL {} ({}): {reason}", report.name, report.file.display());
            }
            Outcome::Skipped(reason) => *skipped.entry(reason).or_default() += 1,
        }
    }
    for (reason, count) in skipped {
        println!("skipped {count}: {reason}");
    }
}
