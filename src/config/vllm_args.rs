//! vLLM's engine-argument names and what simwatt calls them, for the hint an unknown config field gets.
//!
//! People write configs from the vLLM command line they ran (`--enable-chunked-prefill`,
//! `--tensor-parallel-size 4`, `max_num_seqs` at the top level). The config stays strict (every raw
//! struct denies unknown fields); this table only turns the refusal into one that names the simwatt
//! field that means the same, or says that simwatt does not model the setting.
//!
//! Input: an unknown field's name (snake_case or the CLI's `--dashed-spelling`). Output: the hint text.
//! It reads no file and may import nothing but the standard library.

/// vLLM engine arguments (snake_case) and what each is in simwatt.
const VLLM_ARGS: &[(&str, &str)] = &[
    ("model", "`model` (top level)"),
    ("tensor_parallel_size", "`hardware.tensor_parallel`"),
    ("pipeline_parallel_size", "`hardware.pipeline_stages`"),
    (
        "data_parallel_size",
        "`hardware.replicas` (independent replicas, behind `router`); with `enable_expert_parallel`, `hardware.data_parallel` (attention ranks around experts spread over all of them)",
    ),
    (
        "gpu_memory_utilization",
        "`hardware.gpu_memory_utilization`",
    ),
    ("max_num_seqs", "`scheduler.max_num_seqs`"),
    (
        "max_num_batched_tokens",
        "`scheduler.max_num_batched_tokens`",
    ),
    ("block_size", "`scheduler.block_size`"),
    ("num_gpu_blocks_override", "`scheduler.num_gpu_blocks`"),
    (
        "enable_chunked_prefill",
        "`scheduler.policy: sarathi` (chunked prefill under the `scheduler.max_num_batched_tokens` \
         token budget, `scheduler.chunk_size` capping one request's chunk); `scheduler.policy: vllm` is \
         vLLM without chunked prefill",
    ),
    (
        "long_prefill_token_threshold",
        "`scheduler.chunk_size` (with `scheduler.policy: sarathi`)",
    ),
    (
        "max_model_len",
        "nothing: simwatt does not model a context cap below the model's; a request longer than the \
         model's context (the model catalog's `max_position_embeddings`) is rejected",
    ),
    (
        "swap_space",
        "nothing: simwatt does not model swapping; a preempted request is recomputed",
    ),
    (
        "dtype",
        "`precision.weights` (bf16, fp16, ...) and `precision.compute`; without a `precision` section, \
         bytes per weight and KV element are the model catalog's `dtype_bytes`",
    ),
    (
        "kv_cache_dtype",
        "`precision.kv_cache` (bf16, fp16, fp8, int8)",
    ),
    (
        "quantization",
        "`precision.weights` (fp8, int8, int4 for AWQ/GPTQ, or a GGUF type q4_0, q4_k_m, q5_1, q6_k, q8_0) \
         and `precision.compute` (fp8 or int8 for W8A8)",
    ),
    (
        "enforce_eager",
        "nothing in the config: CUDA graphs or eager launches are part of the engine profile \
         (`engine.name`, `engine.version`, `engine.profile`)",
    ),
    (
        "scheduling_policy",
        "nothing: simwatt's batching policies (`scheduler.policy`) serve requests first come, first \
         served",
    ),
];

/// The hint for an unknown field `name` found in `section` (a dotted path, empty at the top level),
/// when `name` is a vLLM engine argument (snake_case, or the CLI's `--dashed` spelling).
pub fn hint(name: &str, section: &str) -> Option<String> {
    let key = name.trim().trim_start_matches('-').replace('-', "_");
    let (_, simwatt) = VLLM_ARGS.iter().find(|(v, _)| *v == key)?;
    let cli = format!("--{}", key.replace('_', "-"));
    let at = if section.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in `{section}`")
    };
    Some(format!(
        "`{name}` ({at}) is vLLM's engine argument `{key}` (`{cli}` on its command line); in simwatt \
         it is {simwatt}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_and_dashed_spellings_get_the_same_simwatt_field() {
        let a = hint("tensor_parallel_size", "hardware").unwrap();
        assert!(a.contains("`hardware.tensor_parallel`"), "{a}");
        assert!(a.contains("in `hardware`"), "{a}");
        let b = hint("--tensor-parallel-size", "").unwrap();
        assert!(b.contains("`hardware.tensor_parallel`"), "{b}");
        assert!(b.contains("at the top level"), "{b}");
        assert!(hint("max_num_seqz", "scheduler").is_none());
    }
}
