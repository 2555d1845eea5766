//! keel-jobs: the files people write to describe jobs and worker pools, and the planner
//! that shows what Keel will do with a job before it runs.
//!
//! Everything here is pure: callers read files and pass their text, and the same text
//! always gives the same job, the same plan and the same error report.
//!
//! ```
//! use keel_jobs::{load_job, plan, Limits};
//! let src = "[job]\nname = \"hello\"\n\n[[task]]\nid = \"a\"\ncommand = \"echo hi\"\n";
//! let job = load_job("hello.toml", src, &Limits::default()).unwrap();
//! let plan = plan(&job, None);
//! assert_eq!(plan.schedule, ["a"]);
//! ```

mod budget_file;
mod budget_load;
mod duration;
mod edge_file;
mod error;
mod generate;
mod job_file;
mod load;
mod locate;
mod plan;
mod pool;
mod render_text;
mod spans;
mod stream_file;
mod timing;

pub use budget_file::{BudgetProblem, BudgetTable};
pub use duration::format as format_duration;
pub use error::{terminal_safe, SpecError};
pub use generate::generated_job;
pub use keel_engine::Limits;
pub use load::{load_job, LoadedJob};
pub use plan::{
    plan, CriticalPath, JobSummary, Limit, Need, PathStep, Plan, PlanEdge, PoolSummary, Stage,
    Warning, PLAN_SCHEMA,
};
pub use pool::{load_pool, Pool, PoolEntry};
