//! The ML.ENERGY benchmark v3 table (`mlenergy_v3_llm_configurations.csv`): vLLM 0.11.1 serving runs on
//! H100 and B200, all requests at t = 0 under a batch cap, measured over the steady state.
//!
//! Input: the flattened CSV. Output: one [`MlEnergyV3Row`] per configuration, every number checked
//! (finite and > 0 where a quantity must be). Reads nothing else and simulates nothing.

use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use std::path::Path;

/// One configuration of the v3 table.
#[derive(Debug, Clone, PartialEq)]
pub struct MlEnergyV3Row {
    /// Data row, 1-based.
    pub row: usize,
    pub task: String,
    pub model_id: String,
    pub architecture: String,
    pub weight_precision: String,
    /// `H100` or `B200`.
    pub gpu: String,
    pub num_gpus: u32,
    pub tensor_parallel: u32,
    /// Expert-parallel degree (1: none): the GPUs a mixture-of-experts model's experts are spread over.
    pub expert_parallel: u32,
    /// Data-parallel degree (1: none): vLLM data-parallel ranks, each with its own engine core and
    /// a `max_num_seqs / data_parallel` share of the batch cap.
    pub data_parallel: u32,
    /// The batch cap of all the run's ranks together.
    pub max_num_seqs: u32,
    /// Mean of the running requests over the steady state.
    pub avg_batch_size: f64,
    /// Mean output tokens per request (whole run).
    pub avg_output_len: f64,
    /// Steady-state GPU power summed over the run's GPUs, watts.
    pub avg_power_w: f64,
    /// Steady-state GPU energy per output token, all GPUs, joules.
    pub j_per_token: f64,
    pub output_tokens_per_s: f64,
    /// Client-side inter-token latency, median, milliseconds.
    pub median_itl_ms: f64,
}

impl MlEnergyV3Row {
    /// Mean power per GPU, watts.
    pub fn power_per_gpu_w(&self) -> f64 {
        self.avg_power_w / self.num_gpus as f64
    }
}

/// Reads the v3 table; a missing column or a value that is not a positive number is an error naming
/// the file, column and row.
pub fn read_mlenergy_v3(path: &Path) -> Result<Vec<MlEnergyV3Row>> {
    let t = CsvTable::read(path)?;
    let col = |n: &str| t.require_column(&[n], "");
    let text = |n: &str| -> Result<Vec<String>> { t.text_values(&col(n)?) };
    let positive = |n: &str| -> Result<Vec<f64>> {
        let v = t.f64_column(&col(n)?)?;
        if let Some((i, x)) = v
            .iter()
            .enumerate()
            .find(|(_, x)| !(x.is_finite() && **x > 0.0))
        {
            return Err(Error::Column {
                path: t.path.clone(),
                column: n.into(),
                row: Some(i + 1),
                message: format!("{x} is not a number > 0"),
            });
        }
        Ok(v)
    };
    let whole = |n: &str| -> Result<Vec<u32>> { t.u32_column(&col(n)?, 1) };
    let (task, model, arch, prec, gpu) = (
        text("task")?,
        text("model_id")?,
        text("architecture")?,
        text("weight_precision")?,
        text("gpu_model")?,
    );
    let (gpus, tp, ep, dp, mns) = (
        whole("num_gpus")?,
        whole("tensor_parallel")?,
        whole("expert_parallel")?,
        whole("data_parallel")?,
        whole("max_num_seqs")?,
    );
    let (bs, out, pw, jpt, tput, itl) = (
        positive("avg_batch_size")?,
        positive("avg_output_len")?,
        positive("avg_power_watts")?,
        positive("energy_per_token_joules")?,
        positive("output_throughput_tokens_per_sec")?,
        positive("median_itl_ms")?,
    );
    Ok((0..t.rows())
        .map(|r| MlEnergyV3Row {
            row: r + 1,
            task: task[r].clone(),
            model_id: model[r].clone(),
            architecture: arch[r].clone(),
            weight_precision: prec[r].clone(),
            gpu: gpu[r].clone(),
            num_gpus: gpus[r],
            tensor_parallel: tp[r],
            expert_parallel: ep[r],
            data_parallel: dp[r],
            max_num_seqs: mns[r],
            avg_batch_size: bs[r],
            avg_output_len: out[r],
            avg_power_w: pw[r],
            j_per_token: jpt[r],
            output_tokens_per_s: tput[r],
            median_itl_ms: itl[r],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "task,activated_params_billions,architecture,avg_batch_size,avg_output_len,avg_power_watts,data_parallel,energy_per_request_joules,energy_per_token_joules,expert_parallel,gpu_model,max_num_seqs,median_itl_ms,model_id,nickname,num_gpus,output_throughput_tokens_per_sec,p90_itl_ms,p95_itl_ms,p99_itl_ms,tensor_parallel,total_params_billions,weight_precision\n";

    #[test]
    fn reads_a_row_and_names_a_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v3.csv");
        let row = "lm-arena-chat,8.0,Dense Transformer,8.0,647.0,427.0,1,1.0,0.5,1,H100,8,8.2,Qwen/Qwen3-8B,Qwen 3 8B,1,900.0,9,10,11,1,8.0,bfloat16\n";
        std::fs::write(&p, format!("{HEAD}{row}")).unwrap();
        let r = read_mlenergy_v3(&p).unwrap();
        assert_eq!(r[0].max_num_seqs, 8);
        assert_eq!(r[0].expert_parallel, 1);
        assert_eq!(r[0].data_parallel, 1);
        assert_eq!(r[0].median_itl_ms, 8.2);
        assert_eq!(r[0].power_per_gpu_w(), 427.0);
        std::fs::write(&p, format!("{HEAD}{}", row.replace(",8.2,", ",-1,"))).unwrap();
        let e = read_mlenergy_v3(&p).unwrap_err().to_string();
        assert!(e.contains("median_itl_ms") && e.contains("v3.csv"), "{e}");
    }
}
