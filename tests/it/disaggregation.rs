//! Disaggregated serving (`hardware.prefill_replicas`, `hardware.kv_link`): prefill and decode pools,
//! KV caches moved between them in bytes / bandwidth + latency, every request completed exactly once,
//! energy and utilisation per pool.

use crate::common::*;
use std::collections::BTreeMap;

/// Four replicas, the first `prefill` of them prefilling, over a 50 GB/s link with 5 us latency.
fn run(prefill: u32, extra: &[&str]) -> simwatt::drivers::simulate::RunOutcome {
    let p = format!("hardware.prefill_replicas={prefill}");
    let mut o = vec![
        "hardware.replicas=4",
        "workload.arrival.rate=8",
        "workload.requests=300",
        "hardware.kv_link.bandwidth_gb_s=50",
        "hardware.kv_link.latency_us=5",
        "router=least_outstanding",
        &p,
    ];
    o.extend_from_slice(extra);
    simulate(&quickstart(), &o)
}

#[test]
fn every_request_completes_exactly_once_across_pools() {
    // 600 blocks per replica: the decode pool runs short of cache, so requests are preempted there.
    for policy in ["vllm", "sarathi", "orca", "lightllm"] {
        let set = format!("scheduler.policy={policy}");
        let o = run(1, &[&set, "scheduler.num_gpu_blocks=600"]);
        let n = o.rows.len();
        assert_eq!(n, 300, "{policy}");
        assert_eq!(o.summary.requests_completed, 300, "{policy}");
        for r in &o.rows {
            assert_eq!(r.status, "completed", "{policy}: request {}", r.request_id);
        }
        // A request with more than one output token moves once, from the prefill replica to a
        // decode replica, and is finished there.
        let mut moved: BTreeMap<u32, u32> = BTreeMap::new();
        for t in &o.result.batches.transfers {
            assert_eq!(t.from_replica, 0, "{policy}");
            assert!((1..4).contains(&t.to_replica), "{policy}");
            *moved.entry(t.request).or_default() += 1;
        }
        for r in &o.rows {
            let id = r.request_id as u32;
            if r.output_tokens > 1 {
                assert_eq!(moved.get(&id), Some(&1), "{policy}: request {id} moved");
                assert!(
                    r.replica >= 1,
                    "{policy}: request {id} finished on the prefill replica"
                );
            } else {
                assert_eq!(moved.get(&id), None, "{policy}: request {id} moved");
            }
        }
        assert_eq!(o.summary.kv_transfers as usize, moved.len(), "{policy}");
        // The prefill replica never decodes; the decode replicas prefill only to recompute a
        // preempted request.
        let b = &o.result.batches;
        for k in 0..b.replica.len() {
            if b.replica[k] == 0 {
                assert_eq!(
                    b.decode_tokens[k], 0,
                    "{policy}: a decode on the prefill replica"
                );
            }
        }
        let decode_prefill: u64 = (0..b.replica.len())
            .filter(|&k| b.replica[k] > 0)
            .map(|k| b.prefill_tokens[k] as u64)
            .sum();
        if o.summary.preemptions == 0 {
            assert_eq!(decode_prefill, 0, "{policy}: prefill on a decode replica");
        }
        // Every output token comes out once: the first from the prefill (or a recomputation), the
        // others from decode steps.
        let decode_tokens: u64 = b.decode_tokens.iter().map(|&t| t as u64).sum();
        let outputs: u64 = o.rows.iter().map(|r| r.output_tokens as u64).sum();
        assert!(decode_tokens <= outputs - n as u64, "{policy}");
        assert!(
            decode_tokens + n as u64 + o.summary.preemptions >= outputs,
            "{policy}: {decode_tokens} decode tokens for {outputs} outputs"
        );
    }
}

#[test]
fn kv_transfers_take_bytes_over_bandwidth_plus_latency_one_at_a_time_per_link() {
    let o = run(2, &[]);
    let bytes_per_token = o.scenario.memory.kv_bytes_per_token_per_gpu;
    let prompts: BTreeMap<u32, u32> = o
        .rows
        .iter()
        .map(|r| (r.request_id as u32, r.prompt_tokens))
        .collect();
    let ts = &o.result.batches.transfers;
    assert!(ts.len() > 250, "{} transfers", ts.len());
    for t in ts {
        // The whole prompt's cache moves: bytes per GPU = prompt tokens x bytes per token per GPU.
        assert_eq!(
            t.bytes_per_gpu,
            prompts[&t.request] as u64 * bytes_per_token,
            "request {}",
            t.request
        );
        let expect = (t.bytes_per_gpu as f64 / 50e9 * 1e9).round() as u64 + 5_000;
        assert_eq!(t.end_ns - t.start_ns, expect, "request {}", t.request);
    }
    // A replica's link carries one cache at a time, sending or receiving.
    for r in 0..4u32 {
        let mut spans: Vec<(u64, u64)> = ts
            .iter()
            .filter(|t| t.from_replica == r || t.to_replica == r)
            .map(|t| (t.start_ns, t.end_ns))
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[1].0 >= w[0].1, "replica {r}: transfers overlap: {w:?}");
        }
    }
    let s = &o.summary;
    let gb: f64 = ts.iter().map(|t| t.bytes_per_gpu as f64).sum::<f64>() / 1e9;
    assert!((s.kv_transfer_gb - gb).abs() < 1e-9 * gb);
    assert!(s.kv_transfer_delay_mean_s.unwrap() >= 5e-6);
}

#[test]
fn pools_split_the_energy_and_the_link_energy_is_counted() {
    let o = run(2, &["hardware.kv_link.power_w=20"]);
    let s = &o.summary;
    let e = &s.energy;
    let (p, d) = (
        e.prefill_pool_energy_j.unwrap(),
        e.decode_pool_energy_j.unwrap(),
    );
    let total = e.energy_j.unwrap();
    assert!(
        (p + d - total).abs() < 1e-6 * total,
        "{p} + {d} J against {total} J"
    );
    for f in [s.prefill_pool_busy_fraction, s.decode_pool_busy_fraction] {
        let f = f.unwrap();
        assert!(f > 0.0 && f <= 1.0, "busy fraction {f}");
    }
    // 20 W per GPU while each transfer runs.
    let link: f64 = o
        .result
        .batches
        .transfers
        .iter()
        .map(|t| 20.0 * (t.end_ns - t.start_ns) as f64 / 1e9)
        .sum();
    let got = e.kv_link_energy_j.unwrap();
    assert!((got - link).abs() < 1e-9 * link, "{got} J against {link} J");
    // The link's energy reaches the facility energy, and so carbon.
    let off = run(2, &["hardware.kv_link.power_w=0"]);
    let kwh =
        |o: &simwatt::drivers::simulate::RunOutcome| o.summary.energy.energy_kwh_facility.unwrap();
    let pue = e.regions[0].pue;
    let added = (kwh(&o) - kwh(&off)) * 3.6e6 / pue;
    assert!(
        (added - link).abs() < 1e-6 * link,
        "{added} J added for {link} J"
    );
    assert_eq!(o.rows, off.rows, "link power changes no timing");
}

#[test]
fn colocated_serving_ignores_a_link_and_reports_no_pools() {
    let plain = simulate(
        &quickstart(),
        &[
            "hardware.replicas=4",
            "workload.arrival.rate=8",
            "workload.requests=300",
        ],
    );
    let with_link = simulate(
        &quickstart(),
        &[
            "hardware.replicas=4",
            "workload.arrival.rate=8",
            "workload.requests=300",
            "hardware.kv_link=infiniband_ndr",
        ],
    );
    assert_eq!(plain.rows, with_link.rows);
    let s = &with_link.summary;
    assert_eq!((s.prefill_replicas, s.kv_transfers), (0, 0));
    assert_eq!(s.prefill_pool_busy_fraction, None);
    assert_eq!(s.energy.decode_pool_energy_j, None);
    assert!(with_link.result.batches.transfers.is_empty());
}

#[test]
fn splitting_the_pools_trades_time_to_first_token_for_time_per_output_token() {
    // Colocated, prefills interrupt decodes; split, decodes run undisturbed and each prefill waits
    // for its pool and its transfer.
    let colocated = run(0, &["workload.arrival.rate=6"]);
    let split = run(1, &["workload.arrival.rate=6"]);
    let (c, s) = (&colocated.summary.latency, &split.summary.latency);
    assert!(
        s.tpot_p50_s.unwrap() < c.tpot_p50_s.unwrap(),
        "TPOT {:?} split against {:?} colocated",
        s.tpot_p50_s,
        c.tpot_p50_s
    );
    assert!(
        s.ttft_p50_s.unwrap() > c.ttft_p50_s.unwrap(),
        "TTFT {:?} split against {:?} colocated",
        s.ttft_p50_s,
        c.ttft_p50_s
    );
}

#[test]
fn slo_attainment_and_goodput_count_the_requests_that_meet_every_bound() {
    let o = run(2, &["slo.ttft_s=0.3", "slo.tpot_s=0.03"]);
    let s = &o.summary;
    let mut met = 0u64;
    for r in &o.rows {
        let expect = r.status == "completed"
            && r.ttft_s.unwrap() <= 0.3
            && r.tpot_s.is_none_or(|t| t <= 0.03);
        assert_eq!(r.slo_met, Some(expect), "request {}", r.request_id);
        met += u64::from(expect);
    }
    // Bounds that some requests miss and some keep, so the counts are tested.
    assert!(
        met > 0 && met < s.requests_total,
        "{met} of {}",
        s.requests_total
    );
    let attainment = s.slo_attainment.unwrap();
    assert_eq!(attainment, met as f64 / s.requests_total as f64);
    assert_eq!(s.goodput_requests_per_s.unwrap(), met as f64 / s.makespan_s);
    assert_eq!(s.column("slo_attainment"), Some(attainment));
    // An end-to-end bound joins the others.
    let e2e = run(2, &["slo.ttft_s=0.3", "slo.tpot_s=0.03", "slo.e2e_s=5"]);
    for (r, plain) in e2e.rows.iter().zip(&o.rows) {
        let expect = plain.slo_met == Some(true) && r.e2e_s.unwrap() <= 5.0;
        assert_eq!(r.slo_met, Some(expect), "request {}", r.request_id);
    }
    // Without an SLO the columns are null.
    let none = run(2, &[]);
    assert!(none.rows.iter().all(|r| r.slo_met.is_none()));
    assert_eq!(
        (
            none.summary.slo_attainment,
            none.summary.goodput_requests_per_s
        ),
        (None, None)
    );
}

#[test]
fn the_request_table_names_each_moved_requests_prefill_replica_and_its_slo_verdict() {
    // The CLI writes requests.parquet from requests spilled to disk while the loop runs; its
    // prefill_replica and slo_met columns equal those of the same run kept in memory.
    let o = run(2, &["slo.ttft_s=0.3", "slo.tpot_s=0.03"]);
    let moved: BTreeMap<u32, u32> = o
        .result
        .batches
        .transfers
        .iter()
        .map(|t| (t.request, t.from_replica))
        .collect();
    for r in &o.rows {
        assert_eq!(
            r.prefill_replica,
            moved.get(&(r.request_id as u32)).copied(),
            "request {}",
            r.request_id
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let q = quickstart();
    let args = [
        "simulate",
        "-c",
        q.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-plots",
        "--no-trace",
        "--set",
        "hardware.replicas=4",
        "--set",
        "workload.arrival.rate=8",
        "--set",
        "workload.requests=300",
        "--set",
        "hardware.kv_link.bandwidth_gb_s=50",
        "--set",
        "hardware.kv_link.latency_us=5",
        "--set",
        "router=least_outstanding",
        "--set",
        "hardware.prefill_replicas=2",
        "--set",
        "slo.ttft_s=0.3",
        "--set",
        "slo.tpot_s=0.03",
    ];
    let c = simwatt(&args);
    assert!(c.status.success(), "{}", stderr(&c));
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(out.join("requests.parquet")).unwrap())
        .finish()
        .unwrap();
    let (ids, pr, sm) = (
        df.column("request_id").unwrap().u64().unwrap(),
        df.column("prefill_replica").unwrap().u32().unwrap(),
        df.column("slo_met").unwrap().bool().unwrap(),
    );
    let mut by_id: Vec<(u64, Option<u32>, Option<bool>)> = (0..df.height())
        .map(|i| (ids.get(i).unwrap(), pr.get(i), sm.get(i)))
        .collect();
    by_id.sort_by_key(|r| r.0);
    let prefill: Vec<Option<u32>> = by_id.iter().map(|r| r.1).collect();
    let met: Vec<Option<bool>> = by_id.iter().map(|r| r.2).collect();
    assert_eq!(
        prefill,
        o.rows.iter().map(|r| r.prefill_replica).collect::<Vec<_>>()
    );
    assert_eq!(met, o.rows.iter().map(|r| r.slo_met).collect::<Vec<_>>());
    assert!(prefill.iter().filter(|p| p.is_some()).count() > 250);
}

/// Requests one at a time (one a second, 1,024 prompt and 16 output tokens each), so every prefill
/// batch has the same shape: on four replicas, the first `prefill` prefilling, with `extra` settings.
fn one_at_a_time(prefill: u32, extra: &[&str]) -> simwatt::drivers::simulate::RunOutcome {
    let mut o = vec![
        "workload.arrival={type: static, rate: 1}",
        "workload.lengths={type: fixed, prompt: 1024, output: 16}",
        "workload.requests=40",
    ];
    o.extend_from_slice(extra);
    run(prefill, &o)
}

/// (duration ns, power W) of every prefill-only batch row of replicas `replicas`.
fn prefill_rows(
    o: &simwatt::drivers::simulate::RunOutcome,
    replicas: std::ops::Range<u32>,
) -> Vec<(u64, f64)> {
    let b = &o.result.batches;
    (0..b.replica.len())
        .filter(|&k| replicas.contains(&b.replica[k]) && b.prefill_tokens[k] == 1024)
        .inspect(|&k| assert_eq!(b.decode_tokens[k], 0, "a decode in a prefill batch"))
        .map(|k| (b.end_ns[k] - b.start_ns[k], b.power_w[k]))
        .collect()
}

/// (duration ns, power W bits) of every decode batch row of replicas `replicas`, sorted.
fn decode_rows(
    o: &simwatt::drivers::simulate::RunOutcome,
    replicas: std::ops::Range<u32>,
) -> Vec<(u64, u64)> {
    let b = &o.result.batches;
    let mut v: Vec<(u64, u64)> = (0..b.replica.len())
        .filter(|&k| replicas.contains(&b.replica[k]) && b.decode_tokens[k] > 0)
        .map(|k| (b.end_ns[k] - b.start_ns[k], b.power_w[k].to_bits()))
        .collect();
    v.sort();
    v
}

#[test]
fn a_prefill_pool_on_its_own_device_prefills_and_draws_power_as_that_device_does() {
    let mixed = one_at_a_time(2, &["hardware.prefill_pool.gpu=h100"]);
    let split = one_at_a_time(2, &[]);
    // The same requests served by one H100 alone: its prefills are the mixed run's.
    let h100 = simulate(
        &quickstart(),
        &[
            "hardware.gpu=h100",
            "workload.arrival={type: static, rate: 1}",
            "workload.lengths={type: fixed, prompt: 1024, output: 16}",
            "workload.requests=40",
        ],
    );
    let (m, a, h) = (
        prefill_rows(&mixed, 0..2),
        prefill_rows(&split, 0..2),
        prefill_rows(&h100, 0..1),
    );
    assert_eq!((m.len(), a.len(), h.len()), (40, 40, 40));
    for k in 0..40 {
        assert_eq!(m[k], h[0], "prefill {k} on the H100 pool");
        assert_eq!(a[k], a[0], "prefill {k} on the A100 pool");
    }
    assert!(
        m[0].0 < a[0].0,
        "an H100 prefill takes {} ns, an A100 one {} ns",
        m[0].0,
        a[0].0
    );
    // The decode pool is the A100s of the all-A100 split, step for step.
    assert_eq!(decode_rows(&mixed, 2..4), decode_rows(&split, 2..4));
    assert!(!decode_rows(&mixed, 2..4).is_empty());
    // Every request completes once, after one move.
    let s = &mixed.summary;
    assert_eq!((s.requests_completed, s.kv_transfers), (40, 40));
    assert!(mixed.rows.iter().all(|r| r.status == "completed"));
    assert_eq!(s.prefill_pool_gpu.as_deref(), Some("h100"));
    assert_eq!(s.prefill_pool_gpus_per_replica, Some(1));
    assert_eq!((s.gpu.as_str(), s.gpus_per_replica), ("a100", 1));
    // Pool energies add up to the total; the prefill pool idles at the H100's idle power.
    let e = &s.energy;
    let (p, d, total) = (
        e.prefill_pool_energy_j.unwrap(),
        e.decode_pool_energy_j.unwrap(),
        e.energy_j.unwrap(),
    );
    assert!(
        (p + d - total).abs() < 1e-9 * total,
        "{p} + {d} J against {total} J"
    );
    let pool = mixed.scenario.prefill_pool.as_ref().unwrap();
    let idle = |s: &simwatt::config::Scenario| {
        s.energy.power_profile.as_ref().unwrap().between_batches_w()
    };
    let (idle_h100, idle_a100) = (idle(pool), idle(&mixed.scenario));
    assert!(
        (idle_h100 - idle_a100).abs() > 1.0,
        "{idle_h100} W and {idle_a100} W"
    );
    let b = &mixed.result.batches;
    let span = mixed.result.end_ns as f64 / 1e9;
    let mut expect = 0.0;
    for r in 0..2u32 {
        let rows = (0..b.replica.len()).filter(|&k| b.replica[k] == r);
        let busy_s: f64 = rows
            .clone()
            .map(|k| (b.end_ns[k] - b.start_ns[k]) as f64 / 1e9)
            .sum();
        let busy_j: f64 = rows.map(|k| b.energy_j[k]).sum();
        expect += busy_j + idle_h100 * (span - busy_s);
    }
    assert!(
        (p - expect).abs() < 1e-9 * expect,
        "{p} J against {expect} J"
    );
    // Rental: each pool's GPU-hours at its own device's price.
    let price =
        |s: &simwatt::config::Scenario| s.device.rental_usd_per_gpu_hour.as_ref().unwrap().value;
    let (ph, pa) = (price(pool), price(&mixed.scenario));
    assert!(ph > pa, "H100 {ph} against A100 {pa} USD per GPU-hour");
    let rental = (2.0 * ph + 2.0 * pa) * span / 3600.0;
    let got = e.regions[0].rental_cost_usd.unwrap();
    assert!(
        (got - rental).abs() < 1e-9 * rental,
        "{got} against {rental} USD"
    );
}

#[test]
fn wider_prefill_parallelism_prefills_faster_and_its_cache_crosses_the_narrower_side() {
    let tp1 = one_at_a_time(2, &[]);
    let tp2 = one_at_a_time(2, &["hardware.prefill_pool.tensor_parallel=2"]);
    let (a, w) = (prefill_rows(&tp1, 0..2), prefill_rows(&tp2, 0..2));
    assert_eq!((a.len(), w.len()), (40, 40));
    assert!(
        w[0].0 < a[0].0,
        "TP 2 {} ns against TP 1 {} ns",
        w[0].0,
        a[0].0
    );
    let s = &tp2.summary;
    let pool = tp2.scenario.prefill_pool.as_ref().unwrap();
    assert_eq!(s.prefill_pool_gpus_per_replica, Some(2));
    // Each pool's cache is its own device and TP's: two GPUs hold more blocks.
    assert_eq!(
        s.prefill_pool_kv_blocks_per_replica,
        Some(pool.memory.num_blocks)
    );
    assert_eq!(s.kv_blocks_per_replica, tp2.scenario.memory.num_blocks);
    assert!(pool.memory.num_blocks > tp2.scenario.memory.num_blocks);
    let b = &tp2.result.batches;
    for k in 0..b.replica.len() {
        let cap = match b.replica[k] < 2 {
            true => pool.memory.num_blocks,
            false => tp2.scenario.memory.num_blocks,
        };
        assert!(b.kv_blocks_used[k] <= cap, "row {k}");
    }
    // The prefill replica's whole cache (prompt x bytes per token per GPU x its 2 GPUs) crosses
    // min(2, 1) = 1 link; with 2 GPUs on both sides, 2 links carry half each.
    let check = |o: &simwatt::drivers::simulate::RunOutcome, links: u32| {
        let p = o.scenario.pool_of(0);
        let whole = 1024 * p.memory.kv_bytes_per_token_per_gpu * p.gpus_per_replica() as u64;
        assert_eq!(o.result.batches.transfers.len(), 40);
        for t in &o.result.batches.transfers {
            assert_eq!(t.gpus, links);
            assert_eq!(t.bytes_per_gpu, whole.div_ceil(links as u64));
            let expect = (t.bytes_per_gpu as f64 / 50e9 * 1e9).round() as u64 + 5_000;
            assert_eq!(t.end_ns - t.start_ns, expect);
        }
        let gb = o.summary.kv_transfer_gb;
        assert!((gb - 40.0 * whole as f64 / 1e9).abs() < 1e-9, "{gb} GB");
        whole
    };
    let whole_tp2 = check(&tp2, 1);
    let whole_tp1 = check(&tp1, 1);
    assert_eq!(
        whole_tp2, whole_tp1,
        "the model's cache is the same bytes on 1 or 2 GPUs"
    );
    let narrow_prefill = one_at_a_time(
        2,
        &[
            "hardware.tensor_parallel=2",
            "hardware.prefill_pool.tensor_parallel=1",
        ],
    );
    check(&narrow_prefill, 1);
    let both = one_at_a_time(
        2,
        &[
            "hardware.tensor_parallel=2",
            "hardware.prefill_pool.tensor_parallel=2",
        ],
    );
    check(&both, 2);
    assert_eq!(both.summary.requests_completed, 40);
}

#[test]
fn a_prefill_pool_of_hardwares_own_layout_changes_nothing() {
    let plain = run(2, &[]);
    let same = run(2, &["hardware.prefill_pool.gpu=a100"]);
    assert!(same.scenario.prefill_pool.is_some());
    assert_eq!(plain.rows, same.rows);
    assert_eq!(plain.result.batches.power_w, same.result.batches.power_w);
    let (a, b) = (
        plain.summary.energy.energy_j.unwrap(),
        same.summary.energy.energy_j.unwrap(),
    );
    assert!((a - b).abs() < 1e-9 * a, "{a} J against {b} J");
}

#[test]
fn a_request_is_served_only_if_it_fits_the_caches_of_both_pools() {
    // A small memory share leaves one pool a small cache; a request longer than it is rejected on
    // arrival, whichever pool is the small one, while the same request fits two large pools.
    let small = "0.19";
    let blocks = |o: &simwatt::drivers::simulate::RunOutcome| {
        let p = o.scenario.prefill_pool.as_ref().unwrap();
        (p.memory.num_blocks, o.scenario.memory.num_blocks)
    };
    let gmu = format!("hardware.prefill_pool.gpu_memory_utilization={small}");
    let probe = run(2, &[&gmu, "workload.requests=1"]);
    let (pool_blocks, decode_blocks) = blocks(&probe);
    assert!(
        pool_blocks < decode_blocks,
        "{pool_blocks} and {decode_blocks} blocks"
    );
    // A prompt of the small cache's size: with its output it is longer than the cache.
    let prompt = pool_blocks * 16;
    assert!(
        prompt + 16 <= 4096,
        "a {prompt}-token prompt is past Llama-2's context"
    );
    let lengths = format!("workload.lengths={{type: fixed, prompt: {prompt}, output: 16}}");
    let serve = |extra: &[&str]| {
        let mut o = vec![
            "workload.arrival={type: static, rate: 1}",
            "workload.requests=10",
            &lengths,
        ];
        o.extend_from_slice(extra);
        run(2, &o)
    };
    let statuses = |o: &simwatt::drivers::simulate::RunOutcome| {
        o.rows.iter().map(|r| r.status).collect::<Vec<_>>()
    };
    let small_prefill = serve(&[&gmu]);
    assert_eq!(statuses(&small_prefill), vec!["rejected_kv_capacity"; 10]);
    let gmu_decode = format!("hardware.gpu_memory_utilization={small}");
    let small_decode = serve(&[
        &gmu_decode,
        "hardware.prefill_pool.gpu_memory_utilization=0.9",
    ]);
    assert_eq!(blocks(&small_decode).1, pool_blocks);
    assert_eq!(statuses(&small_decode), vec!["rejected_kv_capacity"; 10]);
    assert!(small_decode.result.batches.transfers.is_empty());
    let large = serve(&["hardware.prefill_pool.gpu_memory_utilization=0.9"]);
    assert_eq!(statuses(&large), vec!["completed"; 10]);
}

#[test]
fn a_run_folder_of_mixed_pools_names_the_prefill_pool_and_each_groups_gpus() {
    let sets = [
        "hardware.replicas=4",
        "hardware.prefill_replicas=1",
        "hardware.kv_link=infiniband_ndr",
        "hardware.prefill_pool={gpu: h100, tensor_parallel: 2}",
        "workload.requests=100",
        "workload.arrival.rate=4",
    ];
    let (o, md) = summary_md_of(&quickstart(), &sets);
    assert!(
        md.contains("on 3 x NVIDIA A100")
            && md.contains("Prefill pool: 1 replica(s) of 2 x h100 (TP 2)")
            && md.contains("5 GPUs in all")
            && md.contains("| KV cache per prefill replica |"),
        "{md}"
    );
    // power.parquet: each group's GPUs are its pool's, and the rows add up to the run's energy.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.display().to_string();
    let mut args = vec![
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "-o",
        &out_s,
        "-q",
        "--no-plots",
        "--no-trace",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let st = simwatt(&args);
    assert!(st.status.success(), "{}", stderr(&st));
    let run = simwatt::runfolder::RunFolder::read(&out).unwrap();
    let t = run
        .power(simwatt::runfolder::POWER.columns)
        .unwrap()
        .unwrap();
    let (replica, gpus) = (t.u64s("replica").unwrap(), t.u64s("gpus").unwrap());
    for i in 0..t.rows() {
        assert_eq!(gpus[i], if replica[i] == 0 { 2 } else { 1 }, "row {i}");
    }
    let energy: f64 = t.f64s_required("energy_j").unwrap().iter().sum();
    let want = run.summary["energy_j"].as_f64().unwrap();
    assert!(
        (energy - want).abs() < 1e-9 * want,
        "{energy} against {want} J"
    );
    assert!((want - o.summary.energy.energy_j.unwrap()).abs() < 1e-9 * want);
    assert_eq!(run.summary["prefill_pool_gpu"], "h100");
    assert_eq!(run.summary["prefill_pool_gpus_per_replica"], 2);
    assert_eq!(run.summary["gpus_per_replica"], 1);
}

#[test]
fn a_capacity_search_rents_each_pools_gpus_at_its_own_devices_price() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap");
    let out_s = out.display().to_string();
    let st = simwatt(&[
        "search",
        "capacity",
        "--config",
        "experiments/disaggregation-mixed.yaml",
        "--slo",
        "slo_attainment>=0.9",
        "--set",
        "workload.requests=100",
        "--max-probes",
        "2",
        "--max-requests",
        "100",
        "--out",
        &out_s,
        "-q",
    ]);
    assert!(st.status.success(), "{}", stderr(&st));
    let text = std::fs::read_to_string(out.join("capacity.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[head.iter().position(|h| *h == name).unwrap()];
    // 2 H100s and 6 A100s, each at its catalog price.
    let o = simulate(
        &root().join("experiments/disaggregation-mixed.yaml"),
        &["workload.requests=1"],
    );
    let price =
        |s: &simwatt::config::Scenario| s.device.rental_usd_per_gpu_hour.as_ref().unwrap().value;
    let want = 2.0 * price(o.scenario.prefill_pool.as_ref().unwrap()) + 6.0 * price(&o.scenario);
    let got: f64 = col("rental_usd_per_hour").parse().unwrap();
    assert!(
        (got - want).abs() < 1e-9 * want,
        "{got} against {want} USD per hour"
    );
    assert_eq!(col("gpus"), "8");
}
