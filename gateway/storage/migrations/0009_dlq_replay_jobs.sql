-- Bulk DLQ replay jobs, in PostgreSQL so that any replica can report a job another one runs
-- (they were held in the memory of the process that started them).
CREATE TABLE dlq_replay_jobs (
    job_id     text        PRIMARY KEY,
    sink       text        NOT NULL,
    since      timestamptz,
    until      timestamptz,
    matched    integer     NOT NULL,
    replayed   integer     NOT NULL DEFAULT 0,
    status     text        NOT NULL DEFAULT 'running'
               CHECK (status IN ('running', 'done', 'failed')),
    error      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
