//! simwatt's command-line entry point: parse arguments, run the verb, print the error chain on failure.

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use simwatt::cli::{Cli, Command, SimulateCmd};
use simwatt::run::{self, SimulateArgs};
use std::io::IsTerminal;
use std::process::ExitCode;

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating [{bar:40}] {pos}/{len} requests ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

fn simulate(cmd: SimulateCmd) -> anyhow::Result<()> {
    let args = SimulateArgs {
        config: cmd.config,
        overrides: cmd.set,
        out: cmd.out,
        seed: cmd.seed,
        quiet: cmd.quiet,
        force: cmd.force,
    };
    let scenario = run::load_scenario(&args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run::default_out(&args.config));
    // Refuse an occupied output folder before spending time on the simulation.
    if !args.force && out.exists() && std::fs::read_dir(&out)?.next().is_some() {
        anyhow::bail!(
            "{}: already exists and is not empty; choose another --out or pass --force to replace it",
            out.display()
        );
    }
    let total = scenario.raw.workload.requests.unwrap_or(0);
    let pb = progress_bar(total, args.quiet);
    let outcome = run::simulate(scenario, &|n| pb.set_position(n))?;
    pb.finish_and_clear();
    let dir = run::write_run(&outcome, &args, &out)?;
    if !args.quiet {
        let s = &outcome.summary;
        eprintln!(
            "{}/{} requests completed ({} rejected) in {:.2} simulated s; TTFT p50 {:.3} s; {:.1} output tokens/s",
            s.requests_completed,
            s.requests_total,
            s.requests_rejected,
            s.makespan_s,
            s.ttft_s.map(|t| t.p50).unwrap_or(f64::NAN),
            s.output_tokens_per_s
        );
        eprintln!("run folder: {}", dir.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(cmd) => simulate(cmd),
        Command::Sweep(cmd) => simwatt::sweep::main(cmd).map_err(Into::into),
        Command::Search(cmd) => simwatt::search::main(cmd).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
