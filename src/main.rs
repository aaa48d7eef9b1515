//! simwatt's command-line entry point: parse arguments, run the verb, print the error chain on failure.

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use simwatt::cli::{
    Cli, Command, FitCmd, FitEngineCmd, FitLatencyCmd, FitPowerCmd, ReportCmd, SimulateCmd,
    ValidateCmd,
};
use simwatt::config::data::anchor_arg;
use simwatt::drivers::simulate::{self, SimulateArgs};
use simwatt::output::CsvPolicy;
use simwatt::report::{self, ReportOptions};
use std::io::IsTerminal;
use std::process::ExitCode;

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The progress display of `simulate` on a terminal (hidden in scripts and with --quiet): a spinner
/// while the workload and the predictor are prepared, a bar of requests with its ETA during the
/// loop, then a spinner while the outputs are written, which for a large run takes a while.
struct RunBar(ProgressBar);

impl RunBar {
    fn new(quiet: bool) -> Self {
        let pb = progress_bar(0, quiet);
        pb.set_style(style(
            "{spinner} preparing the workload and the execution-time model {elapsed}",
        ));
        if !pb.is_hidden() {
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        RunBar(pb)
    }
}

impl simulate::RunProgress for RunBar {
    fn started(&self, total: u64) {
        self.0.disable_steady_tick();
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_style(style(
            "{spinner} simulating [{bar:40}] {pos}/{len} requests (ETA {eta})",
        ));
    }
    fn finished(&self, n: u64) {
        self.0.set_position(n);
    }
    fn writing(&self) {
        let (n, total) = (self.0.position(), self.0.length().unwrap_or(0));
        self.0
            .set_message(format!("{n}/{total} requests simulated"));
        self.0
            .set_style(style("{spinner} writing outputs ({msg}) {elapsed}"));
        if !self.0.is_hidden() {
            self.0
                .enable_steady_tick(std::time::Duration::from_millis(120));
        }
    }
    fn note(&self, message: &str) {
        // Printed even with --quiet: files were removed.
        self.0.suspend(|| eprintln!("note: {message}"));
    }
}

fn simulate(cmd: SimulateCmd) -> anyhow::Result<()> {
    let args = SimulateArgs {
        config: cmd.config,
        overrides: cmd.set,
        out: cmd.out,
        seed: cmd.seed,
        quiet: cmd.quiet,
        force: cmd.force,
        csv: match (cmd.csv, cmd.no_csv) {
            (true, _) => CsvPolicy::Always,
            (_, true) => CsvPolicy::Never,
            _ => CsvPolicy::Default,
        },
        power_interval_s: simwatt::output::check_power_interval(cmd.power_interval)?,
        batch_rows: if cmd.step_rows {
            simwatt::sim::BatchRows::Steps
        } else {
            simwatt::sim::BatchRows::Runs
        },
    };
    let caches = simwatt::drivers::Caches::new()?.with_hash_index();
    let scenario = simulate::load_scenario(&args, &caches.catalogs)?;
    let fallbacks = scenario.fallbacks();
    if cmd.strict && !fallbacks.is_empty() {
        anyhow::bail!(
            "{}: --strict: {}",
            args.config.display(),
            fallbacks.join("; ")
        );
    }
    // Printed even with --quiet: a weaker model than expected must not pass unnoticed.
    for f in &fallbacks {
        eprintln!("warning: {f}");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| simulate::default_out(&args.config));
    let bar = RunBar::new(args.quiet);
    let report_opts = ReportOptions {
        plots: !cmd.no_plots,
        trace: !cmd.no_trace,
    };
    let (outcome, dir) =
        simulate::simulate_and_write(scenario, &args, &out, &report_opts, &caches, &bar)?;
    bar.0.finish_and_clear();
    if !args.quiet {
        let s = &outcome.summary;
        eprintln!(
            "{}/{} requests completed ({} rejected) in {:.2} simulated s; TTFT p50 {:.3} s; {:.1} output tokens/s",
            s.requests_completed,
            s.requests_total,
            s.requests_rejected,
            s.makespan_s,
            s.latency.ttft_p50_s.unwrap_or(f64::NAN),
            s.output_tokens_per_s
        );
        eprintln!("run folder: {}", dir.display());
    }
    Ok(())
}

fn fit_latency(mut cmd: FitLatencyCmd) -> anyhow::Result<()> {
    use simwatt::drivers::fit_latency::{fit_one, report_markdown, shipped_targets, FitTarget};
    cmd.profiles = anchor_arg(&cmd.profiles);
    let catalog = simwatt::catalog::Catalog::builtin()?;
    let tables = simwatt::predictor::profile::TableCache::default();
    let targets = if cmd.all {
        shipped_targets(&catalog, &cmd.profiles)?
    } else {
        vec![FitTarget {
            gpu: cmd.gpu.clone().unwrap_or_default(),
            model: cmd.model.clone().unwrap_or_default(),
            tp: cmd.tp,
        }]
    };
    let pb = progress_bar(targets.len() as u64, cmd.quiet);
    pb.set_style(
        ProgressStyle::with_template("{spinner} fitting [{bar:40}] {pos}/{len} models {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut text = String::new();
    for t in &targets {
        pb.set_message(format!("{} {} TP{}", t.gpu, t.model, t.tp));
        let md = if cmd.extrapolation {
            simwatt::drivers::fit_latency::extrapolation_markdown(
                &catalog,
                &cmd.profiles,
                t,
                cmd.seed,
            )?
        } else {
            report_markdown(&fit_one(
                &catalog,
                &tables,
                &cmd.profiles,
                t,
                cmd.seed,
                !cmd.no_cache,
            )?)
        };
        pb.suspend(|| println!("{md}"));
        text.push_str(&md);
        text.push('\n');
        pb.inc(1);
    }
    pb.finish_and_clear();
    if let Some(path) = &cmd.report {
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn report(cmd: ReportCmd) -> anyhow::Result<()> {
    let opts = ReportOptions {
        plots: !cmd.no_plots,
        trace: !cmd.no_trace,
    };
    let catalogs = simwatt::catalog::Catalogs::new()?;
    let out = report::write_report(&cmd.run_dir, &opts, catalogs.builtin())?;
    if !cmd.quiet {
        let trace = if out.trace_events.is_some() {
            ", trace.json"
        } else {
            ""
        };
        eprintln!(
            "{}: summary.md, {} plots (PNG + SVG){trace}",
            cmd.run_dir.display(),
            out.plots.len()
        );
    }
    Ok(())
}

/// A progress bar advanced by the replays of `fit power`.
struct ReplayBar(ProgressBar);

impl simwatt::drivers::fit_power::replay::ReplayProgress for ReplayBar {
    fn replaying(&self, what: &str) {
        self.0.set_message(what.to_string());
    }
    fn replayed(&self) {
        self.0.inc(1);
    }
}

fn fit_power(cmd: FitPowerCmd) -> anyhow::Result<()> {
    let args = simwatt::drivers::fit_power::FitPowerArgs {
        gpu: cmd.gpu,
        data: cmd.data.iter().map(|p| anchor_arg(p)).collect(),
        out: cmd.out,
        report: cmd.report,
        force: cmd.force,
    };
    let pb = progress_bar(0, cmd.quiet);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:40}] {pos}/{len} configurations {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let bar = ReplayBar(pb);
    let text = simwatt::drivers::fit_power::run_with(
        &args,
        &|m| bar.0.suspend(|| eprintln!("{m}")),
        &|n| bar.0.set_length(n as u64),
        &bar,
    )?;
    bar.0.finish_and_clear();
    println!("{text}");
    Ok(())
}

fn fit_engine(cmd: FitEngineCmd) -> anyhow::Result<()> {
    use simwatt::drivers::fit_engine::{FitEngineArgs, Param};
    let params = cmd
        .params
        .iter()
        .map(|p| Param::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let args = FitEngineArgs {
        cases: cmd.cases.iter().map(|p| anchor_arg(p)).collect(),
        template: cmd.template.unwrap_or_else(|| cmd.out.clone()),
        out: cmd.out,
        report: cmd.report,
        params,
        no_holdout: cmd.no_holdout,
        power_profile: cmd.power_profile.as_deref().map(anchor_arg),
        power_out: cmd.power_out,
    };
    let quiet = cmd.quiet;
    let o = simwatt::drivers::fit_engine::run(&args, &|m| {
        if !quiet {
            eprintln!("{m}")
        }
    })?;
    println!("{}", o.report);
    Ok(())
}

/// Exit status of a validation whose errors pass a `--max-error` threshold.
const EXIT_THRESHOLD: u8 = 3;

fn validate(cmd: ValidateCmd) -> anyhow::Result<ExitCode> {
    let args = simwatt::drivers::validate::ValidateArgs {
        config: cmd.config.as_deref().map(anchor_arg),
        measured: cmd.measured.as_deref().map(anchor_arg),
        suite: cmd.suite.as_deref().map(anchor_arg),
        out: cmd.out,
        force: cmd.force,
        thresholds: simwatt::drivers::validate::Thresholds::parse(&cmd.max_error)?,
        warmup_s: cmd.warmup_s,
        clock_offset_s: cmd.clock_offset_s,
        utc_offset: cmd.utc_offset,
        plots: !cmd.no_plots,
    };
    let quiet = cmd.quiet;
    let o = simwatt::drivers::validate::run(&args, &|m| {
        if !quiet {
            eprintln!("{m}")
        }
    })?;
    if !quiet {
        println!("{}", o.markdown);
        eprintln!("validation folder: {}", o.dir.display());
    }
    if o.exceeded.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} metric(s) past their --max-error threshold (see validation.md)",
            o.exceeded.len()
        );
        Ok(ExitCode::from(EXIT_THRESHOLD))
    }
}

fn plot(cmd: simwatt::cli::PlotCmd) -> anyhow::Result<()> {
    use simwatt::plots::sweep::{parse_where, plot_sweep, PlotFilter};
    let filter = PlotFilter {
        filters: cmd
            .filters
            .iter()
            .map(|w| parse_where(w))
            .collect::<Result<_, _>>()?,
        average: cmd.average,
    };
    let f = plot_sweep(&cmd.dir, &cmd.x, &cmd.y, cmd.by.as_deref(), &filter)?;
    eprintln!(
        "{}: {}.png, {}.svg, sweep.md",
        cmd.dir.display(),
        f.stem,
        f.stem
    );
    Ok(())
}

/// On SIGINT or SIGTERM, removes the hidden folders of the run folders being written and exits with
/// 128 + the signal's number, as a shell reports a process killed by it. (SIGKILL cannot be caught:
/// the next run into the same folder removes what such a run left.)
#[cfg(unix)]
fn remove_partial_folders_on_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        eprintln!(
            "warning: cannot handle SIGINT / SIGTERM; an interrupted run leaves a hidden folder"
        );
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // The registry stays locked until the process ends, so no folder is committed meanwhile.
            let (removed, _locked) = simwatt::output::remove_partial_folders();
            for p in removed {
                eprintln!(
                    "interrupted: removed the unfinished run folder {}",
                    p.display()
                );
            }
            std::process::exit(128 + signal);
        }
    });
}

fn measure(cmd: simwatt::drivers::measure::MeasureCmd) -> anyhow::Result<()> {
    use simwatt::drivers::measure::{self as m, MeasureCmd};
    let log = |s: &str| eprintln!("{s}");
    let o = match &cmd {
        MeasureCmd::Power(c) => m::power(c, &log)?,
        MeasureCmd::Load(c) => m::load(c, &log)?,
        MeasureCmd::Run(c) => m::run(c, &log)?,
    };
    if o.requests > 0 {
        eprintln!(
            "{} of {} requests completed",
            o.requests - o.failed,
            o.requests
        );
    }
    eprintln!(
        "measured-run folder: {} ({})",
        o.dir.display(),
        o.files.join(", ")
    );
    Ok(())
}

fn split(cmd: simwatt::drivers::split::SplitCmd) -> anyhow::Result<()> {
    let caches = simwatt::drivers::Caches::new()?;
    let o = simwatt::drivers::split::run(&cmd, &caches)?;
    if !cmd.quiet {
        let opt = &o.optimum;
        eprintln!(
            "lowest total energy at w* = {}, lowest device energy at w* = {}, lowest mean end to end at w* = {}",
            opt.lowest_total_energy_tokens, opt.lowest_device_energy_tokens, opt.lowest_e2e_mean_tokens
        );
        eprintln!("split folder: {}", o.dir.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    #[cfg(unix)]
    remove_partial_folders_on_signal();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(cmd) => simulate(cmd),
        Command::Fit(FitCmd::Latency(cmd)) => fit_latency(cmd),
        Command::Report(cmd) => report(cmd),
        Command::Plot(cmd) => plot(cmd),
        Command::Fit(FitCmd::Power(cmd)) => fit_power(cmd),
        Command::Fit(FitCmd::Engine(cmd)) => fit_engine(cmd),
        Command::Sweep(cmd) => simwatt::drivers::sweep::main(cmd).map_err(Into::into),
        Command::Search(cmd) => simwatt::drivers::search::main(cmd).map_err(Into::into),
        Command::Measure(cmd) => measure(cmd),
        Command::Split(cmd) => split(cmd),
        Command::Validate(cmd) => match validate(cmd) {
            Ok(code) => {
                simwatt::output::settle();
                return code;
            }
            Err(e) => Err(e),
        },
    };
    // A signal handler removing unfinished folders finishes (and exits) before this thread goes on.
    simwatt::output::settle();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
