//! ONNX Runtime: the process's one environment and pools of inference sessions. The only module
//! in the workspace that names `ort`; the classifier, the encoder and the context head all run
//! their graphs through a [`SessionPool`].

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

/// Why ONNX Runtime could not load or run a graph.
#[derive(Debug, thiserror::Error)]
#[error("ONNX Runtime: {0}")]
pub struct RuntimeError(pub String);

fn runtime<E: std::fmt::Display>(e: E) -> RuntimeError {
    RuntimeError(e.to_string())
}

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// Loads the ONNX Runtime shared library from `library` and creates the process's one runtime
/// environment. Later calls return immediately.
pub fn init_runtime(library: &Path) -> Result<(), RuntimeError> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    if !library.is_file() {
        return Err(RuntimeError(format!(
            "library {} not found (run scripts/setup.sh or set model.onnxruntime)",
            library.display()
        )));
    }
    let env = ort::init_from(library)
        .map_err(runtime)?
        .with_name("cordon")
        .build()
        .map_err(runtime)?;
    let _ = ENVIRONMENT.set(env);
    Ok(())
}

/// Where ONNX Runtime runs a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU through ONNX Runtime's CUDA execution provider, where the ONNX Runtime
    /// library has it; otherwise the CPU (ONNX Runtime logs the fallback).
    Cuda,
}

/// A named input of a graph: a row-major `[rows, columns]` tensor.
#[derive(Debug, Clone)]
pub enum Input {
    /// 64-bit integers (token or feature ids).
    Int64 {
        /// `[rows, columns]`.
        shape: [usize; 2],
        /// The values, row after row.
        data: Vec<i64>,
    },
    /// 32-bit floats.
    Float {
        /// `[rows, columns]`.
        shape: [usize; 2],
        /// The values, row after row.
        data: Vec<f32>,
    },
}

/// A graph loaded into a pool of sessions that are used in turn, one call at a time each.
pub struct SessionPool {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl SessionPool {
    /// Loads the graph in `bytes` into `sessions` sessions (at least one) of `threads` intra-op
    /// threads each on `device` (falling back to the CPU where the device is not available to
    /// this ONNX Runtime). [`init_runtime`] must have run.
    pub fn new(
        bytes: &[u8],
        sessions: usize,
        threads: usize,
        device: Device,
    ) -> Result<SessionPool, RuntimeError> {
        let env = ENVIRONMENT
            .get()
            .ok_or_else(|| RuntimeError("init_runtime was not called".into()))?;
        let mut pool = Vec::with_capacity(sessions.max(1));
        for _ in 0..sessions.max(1) {
            let mut builder = Session::builder(env)
                .map_err(runtime)?
                .with_intra_threads(threads.max(1))
                .map_err(runtime)?
                .with_inter_threads(1)
                .map_err(runtime)?;
            if device == Device::Cuda {
                builder = builder
                    .with_execution_providers([ort::ep::CUDA::default().build()])
                    .map_err(runtime)?;
            }
            pool.push(Mutex::new(
                builder.commit_from_memory(bytes).map_err(runtime)?,
            ));
        }
        Ok(SessionPool {
            sessions: pool,
            next: AtomicUsize::new(0),
        })
    }

    /// How many sessions it holds.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether it holds no session (never: [`SessionPool::new`] makes at least one).
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Runs the graph on the next session with the named `inputs` and returns the float output
    /// `output` as `[rows, columns]` values, checked to have `rows` rows of `columns` each.
    pub fn run(
        &self,
        inputs: Vec<(&'static str, Input)>,
        output: &str,
        rows: usize,
        columns: usize,
    ) -> Result<Vec<f32>, RuntimeError> {
        let mut values: Vec<(&'static str, SessionInputValue<'static>)> =
            Vec::with_capacity(inputs.len());
        for (name, input) in inputs {
            let value: SessionInputValue<'static> = match input {
                Input::Int64 { shape, data } => {
                    Tensor::from_array((shape, data)).map_err(runtime)?.into()
                }
                Input::Float { shape, data } => {
                    Tensor::from_array((shape, data)).map_err(runtime)?.into()
                }
            };
            values.push((name, value));
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[slot]
            .lock()
            .map_err(|_| RuntimeError("a session mutex was poisoned".into()))?;
        let outputs = session.run(values).map_err(runtime)?;
        let value = outputs
            .get(output)
            .ok_or_else(|| RuntimeError(format!("the graph has no output `{output}`")))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(runtime)?;
        if shape.len() != 2 || shape[0] as usize != rows || shape[1] as usize != columns {
            return Err(RuntimeError(format!(
                "output `{output}` has shape {shape:?}, expected [{rows}, {columns}]"
            )));
        }
        Ok(data.to_vec())
    }
}
