//! GPU readings: power, utilisation, SM clock and memory in use, through NVML (`nvml-wrapper`, which
//! loads `libnvidia-ml` at run time, so a host without a GPU or driver runs and is told so) or, as a
//! fallback, one `nvidia-smi --query-gpu` call per reading.
//!
//! Input: nothing but the driver. Output: one [`GpuReading`] per GPU per call. It writes no file.

use nvml_wrapper::enum_wrappers::device::Clock as NvmlClock;
use nvml_wrapper::Nvml;
use std::process::Command;

/// One GPU's state at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    pub power_w: f64,
    /// Percent of the last sample period with a kernel running.
    pub util_pct: Option<f64>,
    pub sm_clock_mhz: Option<f64>,
    pub mem_used_mib: Option<f64>,
}

/// Where GPU readings come from.
pub enum GpuSource {
    /// Boxed: the library handle is large.
    Nvml(Box<Nvml>),
    NvidiaSmi,
}

impl std::fmt::Debug for GpuSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

const SMI_QUERY: &str = "index,name,power.draw,utilization.gpu,clocks.sm,memory.used";

impl GpuSource {
    /// `nvml` or `nvidia-smi`.
    pub fn label(&self) -> &'static str {
        match self {
            GpuSource::Nvml(_) => "nvml",
            GpuSource::NvidiaSmi => "nvidia-smi",
        }
    }

    /// NVML with at least one GPU, or the reason there is none (no library, no driver, no GPU).
    pub fn open_nvml() -> Result<GpuSource, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML could not be initialised: {e}"))?;
        match nvml.device_count() {
            Ok(0) => Err("NVML found no GPU".into()),
            Ok(_) => Ok(GpuSource::Nvml(Box::new(nvml))),
            Err(e) => Err(format!("NVML could not count the GPUs: {e}")),
        }
    }

    /// nvidia-smi, when it runs and lists at least one GPU; else the reason.
    pub fn open_nvidia_smi() -> Result<GpuSource, String> {
        let s = GpuSource::NvidiaSmi;
        match s.read() {
            Ok(r) if !r.is_empty() => Ok(s),
            Ok(_) => Err("nvidia-smi lists no GPU".into()),
            Err(e) => Err(e),
        }
    }

    /// One reading of every GPU.
    pub fn read(&self) -> Result<Vec<GpuReading>, String> {
        match self {
            GpuSource::Nvml(nvml) => read_nvml(nvml),
            GpuSource::NvidiaSmi => {
                let out = Command::new("nvidia-smi")
                    .arg(format!("--query-gpu={SMI_QUERY}"))
                    .arg("--format=csv,noheader,nounits")
                    .output()
                    .map_err(|e| format!("nvidia-smi could not be run: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "nvidia-smi failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                parse_smi(&String::from_utf8_lossy(&out.stdout))
            }
        }
    }
}

fn read_nvml(nvml: &Nvml) -> Result<Vec<GpuReading>, String> {
    let n = nvml.device_count().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let d = nvml
            .device_by_index(i)
            .map_err(|e| format!("NVML GPU {i}: {e}"))?;
        let mw = d
            .power_usage()
            .map_err(|e| format!("NVML GPU {i}: power: {e}"))?;
        out.push(GpuReading {
            index: i,
            name: d.name().unwrap_or_else(|_| format!("GPU {i}")),
            power_w: mw as f64 / 1000.0,
            util_pct: d.utilization_rates().ok().map(|u| u.gpu as f64),
            sm_clock_mhz: d.clock_info(NvmlClock::SM).ok().map(f64::from),
            mem_used_mib: d
                .memory_info()
                .ok()
                .map(|m| m.used as f64 / (1024.0 * 1024.0)),
        });
    }
    Ok(out)
}

/// Parses `nvidia-smi --query-gpu=index,name,power.draw,utilization.gpu,clocks.sm,memory.used
/// --format=csv,noheader,nounits`. A cell nvidia-smi cannot fill (`[N/A]`) is `None`; a power it
/// cannot read is an error.
pub fn parse_smi(text: &str) -> Result<Vec<GpuReading>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != 6 {
            return Err(format!(
                "nvidia-smi printed `{line}`, not the 6 fields asked ({SMI_QUERY})"
            ));
        }
        let num = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite());
        let index = cells[0]
            .parse::<u32>()
            .map_err(|_| format!("nvidia-smi printed GPU index `{}`", cells[0]))?;
        let power_w = num(cells[2])
            .ok_or_else(|| format!("nvidia-smi gives no power for GPU {index}: `{}`", cells[2]))?;
        out.push(GpuReading {
            index,
            name: cells[1].to_string(),
            power_w,
            util_pct: num(cells[3]),
            sm_clock_mhz: num(cells[4]),
            mem_used_mib: num(cells[5]),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_parse_with_unreadable_cells_as_none() {
        let r = parse_smi("0, NVIDIA H100 80GB HBM3, 123.45, 37, 1980, 1024\n1, NVIDIA H100 80GB HBM3, 70.10, [N/A], 345, 0\n").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].power_w, 123.45);
        assert_eq!(r[0].util_pct, Some(37.0));
        assert_eq!(r[1].util_pct, None);
        assert!(parse_smi("0, X, [N/A], 1, 2, 3").is_err());
        assert!(parse_smi("garbage").is_err());
    }
}
