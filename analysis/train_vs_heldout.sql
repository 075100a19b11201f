-- What it answers: does what a run learns carry over from the probes whose prompts it trained on
-- (split `train`) to prompts it never saw (split `heldout`)? For every run and category, the
-- change in mean log-probability from the first to the last evaluation on each split, side by
-- side, and the gap train - heldout (positive: moved more on trained prompts).
--
-- Changes are per response (last minus first step), averaged over the responses scored at both
-- steps; a split without such responses shows NULL.
--
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
WITH bounds AS (
    SELECT run_id, min(step) AS first_step, max(step) AS last_step
    FROM logprobs GROUP BY run_id
),
changes AS (
    SELECT b.run_id, r.category, p.split, e.logprob - s.logprob AS change
    FROM bounds AS b
    JOIN logprobs AS s ON s.run_id = b.run_id AND s.step = b.first_step
    JOIN logprobs AS e ON e.run_id = b.run_id AND e.step = b.last_step AND e.response_id = s.response_id
    JOIN responses AS r ON r.id = s.response_id
    JOIN probes AS p ON p.id = r.probe_id
),
per_split AS (
    SELECT run_id, category,
           avg(CASE WHEN split = 'train' THEN change END) AS train_change,
           avg(CASE WHEN split = 'heldout' THEN change END) AS heldout_change,
           sum(split = 'train') AS n_train,
           sum(split = 'heldout') AS n_heldout
    FROM changes GROUP BY run_id, category
)
SELECT x.name AS experiment, u.id AS run_id, u.name AS run, q.category,
       q.n_train, q.n_heldout,
       round(q.train_change, 4) AS train_change,
       round(q.heldout_change, 4) AS heldout_change,
       round(q.train_change - q.heldout_change, 4) AS gap
FROM per_split AS q
JOIN runs AS u ON u.id = q.run_id
JOIN experiments AS x ON x.id = u.experiment_id
WHERE :experiment IS NULL OR x.name = :experiment
ORDER BY x.name, u.id, q.category;
