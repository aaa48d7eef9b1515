//! Prefix caching (`scheduler.enable_prefix_caching`) on workloads with shared prompt prefixes
//! (`workload.shared_prefix`): hits skip prefill work, never more than the prefix, and the cache
//! neither leaks nor loses a request under memory pressure.

use crate::common::*;

const PREFIX: [&str; 2] = [
    "workload.shared_prefix.tokens=1024",
    "workload.shared_prefix.groups=4",
];

fn run(extra: &[&str]) -> simwatt::drivers::simulate::RunOutcome {
    let mut o: Vec<&str> = PREFIX.to_vec();
    o.extend_from_slice(extra);
    simulate(&quickstart(), &o)
}

#[test]
fn shared_prefixes_alone_change_nothing_and_caching_them_saves_prefill_work() {
    let plain = simulate(&quickstart(), &[]);
    let off = run(&[]);
    // Prefix groups draw from a stream of their own, and without caching nobody reads them.
    assert_eq!(plain.rows, off.rows, "shared prefixes without caching");
    assert_eq!(off.summary.prefix_cached_tokens, 0);
    assert_eq!(off.summary.prefix_hit_rate, 0.0);

    for policy in ["vllm", "sarathi"] {
        let set = format!("scheduler.policy={policy}");
        let off = run(&[&set]);
        let on = run(&[&set, "scheduler.enable_prefix_caching=true"]);
        let (a, b) = (&off.summary, &on.summary);
        assert_eq!(b.requests_completed, a.requests_completed, "{policy}");
        assert!(
            b.prefix_hit_rate > 0.3,
            "{policy}: hit rate {}",
            b.prefix_hit_rate
        );
        assert!(
            on.result.prefill_tokens + b.prefix_cached_tokens
                >= off.result.prefill_tokens * 99 / 100,
            "{policy}: cached and prefilled tokens make up the prompts"
        );
        assert!(
            on.result.prefill_tokens < off.result.prefill_tokens * 6 / 10,
            "{policy}: {} prefill tokens with the cache, {} without",
            on.result.prefill_tokens,
            off.result.prefill_tokens
        );
        let (ea, eb) = (
            a.energy.prefill_energy_j.unwrap(),
            b.energy.prefill_energy_j.unwrap(),
        );
        assert!(
            eb < 0.6 * ea,
            "{policy}: prefill energy {eb} J against {ea} J"
        );
        assert!(
            b.latency.ttft_p50_s.unwrap() < a.latency.ttft_p50_s.unwrap(),
            "{policy}: TTFT"
        );
        // A request reuses at most its prefix: whole blocks of it, leaving a prompt token to compute.
        for r in &on.rows {
            let prefix = 1024.min(r.prompt_tokens - 1);
            assert!(
                r.cached_tokens <= prefix * (1 + r.preemptions),
                "{policy}: request {} cached {} of a {prefix}-token prefix",
                r.request_id,
                r.cached_tokens
            );
            assert_eq!(r.cached_tokens % 16, 0, "whole 16-token blocks");
        }
        let cached: u64 = on.rows.iter().map(|r| r.cached_tokens as u64).sum();
        assert_eq!(cached, b.prefix_cached_tokens);
    }
}

#[test]
fn under_memory_pressure_cached_blocks_are_evicted_and_every_request_completes_once() {
    // A cache of 400 blocks (6,400 tokens) for prompts of up to 2,048 tokens: requests are preempted
    // and cached prefixes evicted all the time.
    for policy in ["vllm", "sarathi"] {
        let set = format!("scheduler.policy={policy}");
        let o = run(&[
            &set,
            "scheduler.enable_prefix_caching=true",
            "scheduler.num_gpu_blocks=400",
            "workload.requests=200",
        ]);
        let s = &o.summary;
        assert_eq!(s.requests_completed, 200, "{policy}");
        assert!(s.preemptions > 0, "{policy}: the run is under pressure");
        assert!(s.prefix_cached_tokens > 0, "{policy}");
        let mut ids: Vec<u64> = o.rows.iter().map(|r| r.request_id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        assert!(o.rows.iter().all(|r| r.status == "completed"));
    }
}

#[test]
fn prefix_caching_with_a_policy_that_does_not_model_it_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "scheduler.policy=orca",
        "--set",
        "scheduler.enable_prefix_caching=true",
        "-o",
        tmp.path().join("r").to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["scheduler.enable_prefix_caching", "orca"]);
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.shared_prefix.groups=0",
        "--set",
        "workload.shared_prefix.tokens=10",
        "-o",
        tmp.path().join("r2").to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["workload.shared_prefix.groups", "at least 1"]);
}

#[test]
fn a_mooncake_trace_replays_with_hits_on_the_blocks_its_hash_ids_share() {
    // The Mooncake conversation sample (tests/data/traces): every prompt starts with hash id 0 (one
    // 512-token block shared by all) and then ids of its own. With prefix caching on, the requests
    // admitted after the first finished its prefill find that block: 512 tokens each, never more.
    let tmp = tempfile::tempdir().unwrap();
    let trace = root().join("tests/data/traces/conversation_trace.jsonl");
    let config = write(
        tmp.path(),
        "mooncake.yaml",
        &format!(
            "model: meta-llama/Llama-3.1-8B\n\
             hardware: {{ gpu: h100 }}\n\
             scheduler: {{ policy: sarathi, max_num_seqs: 64, max_num_batched_tokens: 8192, \
             enable_prefix_caching: true }}\n\
             workload:\n  arrival: {{ type: trace }}\n  lengths: {{ type: trace }}\n  \
             trace: {}\n  trace_format: mooncake\n",
            trace.display()
        ),
    );
    let on = simulate(&config, &[]);
    let off = simulate(&config, &["scheduler.enable_prefix_caching=false"]);
    assert_eq!(on.summary.requests_completed, on.rows.len() as u64);
    assert_eq!(off.summary.prefix_cached_tokens, 0);
    let hits: Vec<u32> = on.rows.iter().map(|r| r.cached_tokens).collect();
    assert!(hits.iter().any(|&c| c > 0), "no hit: {hits:?}");
    assert!(hits.iter().all(|&c| c == 0 || c == 512), "{hits:?}");
    assert_eq!(hits[0], 0, "the first request finds an empty cache");
    assert!(on.result.prefill_tokens < off.result.prefill_tokens);
    // A block size that does not divide the trace's 512-token blocks is refused by name.
    let o = simwatt(&[
        "simulate",
        "-c",
        config.to_str().unwrap(),
        "--set",
        "scheduler.block_size=24",
        "-o",
        tmp.path().join("r").to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["scheduler.block_size", "24", "512"]);
}

const SESSIONS: [&str; 3] = [
    "workload.requests=96",
    "workload.sessions={turns: [2, 6], think_s: 5.0}",
    "workload.lengths={type: uniform, prompt: [64, 256], output: [32, 128]}",
];

#[test]
fn multi_turn_sessions_arrive_after_their_previous_turn_and_reuse_its_context() {
    let run = |caching: &str| {
        let mut o = SESSIONS.to_vec();
        o.push(caching);
        simulate(&quickstart(), &o)
    };
    let off = run("scheduler.enable_prefix_caching=false");
    let on = run("scheduler.enable_prefix_caching=true");
    for o in [&off, &on] {
        let reqs = &o.result.requests;
        assert!(
            reqs.len() > 2 * 96,
            "every session has 2 to 6 turns: {}",
            reqs.len()
        );
        assert_eq!(o.summary.requests_completed, reqs.len() as u64);
        // Turns of a session, in order: each arrives after the previous one completed, its prompt the
        // previous prompt and output plus at least 64 new tokens.
        let mut by_session: std::collections::BTreeMap<u32, Vec<&simwatt::cluster::Request>> =
            Default::default();
        for r in reqs {
            by_session.entry(r.session).or_default().push(r);
        }
        assert_eq!(by_session.len(), 96);
        for turns in by_session.values() {
            assert!((2..=6).contains(&turns.len()), "{} turns", turns.len());
            for (k, w) in turns.windows(2).enumerate() {
                let (a, b) = (w[0], w[1]);
                assert_eq!((a.turn, b.turn), (k as u32, k as u32 + 1));
                assert!(b.arrival_ns >= a.completion_ns.unwrap());
                let history = a.prompt_tokens + a.output_tokens;
                assert!(b.prompt_tokens >= history + 64 && b.prompt_tokens <= history + 256);
                // Never more than the history is taken from the cache, in whole blocks.
                assert!(
                    b.cached_tokens <= history,
                    "{} of {history}",
                    b.cached_tokens
                );
            }
            assert_eq!(
                turns[0].cached_tokens, 0,
                "a first turn has nothing to reuse"
            );
        }
    }
    // The request table names each turn's session and turn, streamed to disk as in memory.
    for (row, r) in on.rows.iter().zip(&on.result.requests) {
        assert_eq!((row.session, row.turn), (Some(r.session), Some(r.turn)));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut args = vec![
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "-q",
        "--no-plots",
    ];
    for s in SESSIONS {
        args.extend(["--set", s]);
    }
    args.extend(["--set", "scheduler.enable_prefix_caching=true"]);
    args.extend(["--no-trace", "-o", dir.to_str().unwrap()]);
    let o = simwatt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = simwatt::runfolder::RunFolder::read(&dir)
        .unwrap()
        .requests(&["session", "turn", "cached_tokens"])
        .unwrap();
    let turns = t.u64s("turn").unwrap();
    let want: Vec<u64> = on.rows.iter().map(|r| r.turn.unwrap() as u64).collect();
    assert_eq!(turns, want);
    let plain = simulate(&quickstart(), &["workload.requests=8"]);
    assert!(plain
        .rows
        .iter()
        .all(|r| r.session.is_none() && r.turn.is_none()));

    let (a, b) = (&off.summary, &on.summary);
    assert_eq!(a.prefix_cached_tokens, 0);
    assert!(b.prefix_hit_rate > 0.3, "hit rate {}", b.prefix_hit_rate);
    assert!(on.result.prefill_tokens < off.result.prefill_tokens / 2);
    let (ea, eb) = (
        a.energy.prefill_energy_j.unwrap(),
        b.energy.prefill_energy_j.unwrap(),
    );
    assert!(eb < 0.6 * ea, "prefill energy {eb} J against {ea} J");
}

#[test]
fn sessions_with_shared_prefixes_or_no_turns_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, sets: &[&str]| {
        let mut args = vec!["simulate", "-c", "experiments/quickstart.yaml", "-q"];
        for s in sets {
            args.push("--set");
            args.push(s);
        }
        let out = tmp.path().join(name);
        args.push("-o");
        let out = out.to_str().unwrap().to_string();
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        simwatt(&args)
    };
    let o = run(
        "a",
        &[
            "workload.sessions={turns: [2, 3], think_s: 1.0}",
            "workload.shared_prefix={tokens: 64}",
        ],
    );
    assert_clean_failure(&o, &["workload.shared_prefix", "workload.sessions"]);
    let o = run("b", &["workload.sessions={turns: [0, 3], think_s: 1.0}"]);
    assert_clean_failure(&o, &["workload.sessions.turns", "[0, 3]"]);
    let o = run("c", &["workload.sessions={turns: [1, 3], think_s: -1.0}"]);
    assert_clean_failure(&o, &["workload.sessions.think_s", "-1"]);
}
