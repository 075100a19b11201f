-- What it answers: for every run, how far did each response category move between the run's
-- first and last evaluation, on train and on held-out probes, and for what share of responses
-- did the log-probability rise? (The same numbers as deltas.csv of `alignscope report`.)
--
-- start / end: mean log-probability (sum over response tokens, nats) at the first / last step,
-- over the responses scored at both; change = end - start; frac_rose = share of those responses
-- whose log-probability went up. Categories with no response scored at both steps (the dynamic
-- `greedy` category, whose text changes) have no row.
--
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
WITH bounds AS (
    SELECT run_id, min(step) AS first_step, max(step) AS last_step
    FROM logprobs GROUP BY run_id
),
pairs AS (
    SELECT b.run_id, b.first_step, b.last_step, r.category, p.split,
           s.logprob AS start_logprob, e.logprob AS end_logprob
    FROM bounds AS b
    JOIN logprobs AS s ON s.run_id = b.run_id AND s.step = b.first_step
    JOIN logprobs AS e ON e.run_id = b.run_id AND e.step = b.last_step AND e.response_id = s.response_id
    JOIN responses AS r ON r.id = s.response_id
    JOIN probes AS p ON p.id = r.probe_id
)
SELECT x.name AS experiment, u.id AS run_id, u.name AS run, q.category, q.split,
       q.first_step, q.last_step, count(*) AS n,
       round(avg(q.start_logprob), 4) AS start_mean,
       round(avg(q.end_logprob), 4) AS end_mean,
       round(avg(q.end_logprob - q.start_logprob), 4) AS change,
       round(avg(q.end_logprob > q.start_logprob), 4) AS frac_rose
FROM pairs AS q
JOIN runs AS u ON u.id = q.run_id
JOIN experiments AS x ON x.id = u.experiment_id
WHERE :experiment IS NULL OR x.name = :experiment
GROUP BY u.id, q.category, q.split
ORDER BY x.name, u.id, q.category, q.split;
